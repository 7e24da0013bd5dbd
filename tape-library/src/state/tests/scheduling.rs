//! Volumes, drives, rounds and mounts.

use super::*;

#[test]
fn one_mount_per_volume_reads_all_its_files_in_tape_order() {
    let mut lib = lib(1, 1 << 30);
    let a = submit(
        &mut lib,
        "a",
        vec![
            file("/v1/c", on("V1", 3, 10)),
            file("/v2/a", on("V2", 1, 10)),
            file("/v1/a", on("V1", 1, 10)),
        ],
        0,
    );
    let b = submit(&mut lib, "b", vec![file("/v1/b", on("V1", 2, 10))], 1);
    let read = run_drive(&mut lib, 0, 2);
    // V1 first (its oldest recall is older), all of it, in position order.
    assert_eq!(read, ["/v1/a", "/v1/b", "/v1/c", "/v2/a"]);
    let st = lib.admin_state(2).scheduler;
    assert_eq!(st.mounts, 2);
    assert_eq!(st.mounts_per_volume.get("V1"), Some(&1));
    assert!(states(&lib, &a)
        .iter()
        .all(|(_, s)| *s == FileState::Completed));
    assert_eq!(
        states(&lib, &b),
        [("/v1/b".to_owned(), FileState::Completed)]
    );
}

#[test]
fn two_drives_take_two_volumes_and_a_mounted_volume_is_not_remounted() {
    let mut lib = lib(2, 1 << 30);
    submit(
        &mut lib,
        "r1",
        vec![file("/a", on("V1", 1, 1)), file("/b", on("V2", 1, 1))],
        0,
    );
    assert_eq!(mount_of(lib.next_job(0, 0)), "V1");
    assert_eq!(mount_of(lib.next_job(1, 0)), "V2");
    run_drive(&mut lib, 0, 1);
    lib.mount_done(1);
    run_drive(&mut lib, 1, 1);
    assert_eq!(lib.admin_state(1).scheduler.mounts, 2);

    // New work on V2 goes to drive 1, which still holds V2: no mount. Drive
    // 0 (holding V1) may not take V2 from it.
    submit(&mut lib, "r2", vec![file("/c", on("V2", 2, 1))], 2);
    assert_eq!(lib.next_job(0, 2), None);
    assert_eq!(read_of(lib.next_job(1, 2)).as_str(), "/c");
    assert_eq!(lib.admin_state(2).scheduler.mounts, 2);
}

#[test]
fn a_drive_holding_a_volume_leaves_a_new_mount_to_an_empty_drive() {
    let mut lib = lib(2, 1 << 30);
    submit(&mut lib, "r1", vec![file("/a", on("V1", 1, 1))], 0);
    assert_eq!(run_drive(&mut lib, 0, 0), ["/a"]);
    submit(&mut lib, "r2", vec![file("/b", on("V2", 1, 1))], 1);
    assert_eq!(lib.next_job(0, 1), None, "drive 0 keeps V1 mounted");
    assert_eq!(mount_of(lib.next_job(1, 1)), "V2");
    // With no empty drive left, drive 0 swaps its volume.
    submit(&mut lib, "r3", vec![file("/c", on("V3", 1, 1))], 2);
    match lib.next_job(0, 2) {
        Some(Job::Mount { volume, unmount }) => {
            assert_eq!((volume.as_str(), unmount.as_deref()), ("V3", Some("V1")));
        }
        other => panic!("expected a mount, got {other:?}"),
    }
}

#[test]
fn a_file_joins_the_round_unless_the_drive_has_passed_it() {
    let mut lib = lib(1, 1 << 30);
    submit(
        &mut lib,
        "r1",
        vec![file("/p2", on("V", 2, 1)), file("/p4", on("V", 4, 1))],
        0,
    );
    assert_eq!(mount_of(lib.next_job(0, 0)), "V");
    lib.mount_done(0);
    let first = read_of(lib.next_job(0, 0));
    assert_eq!(first.as_str(), "/p2");
    // Requested while /p2 is read: /p3 is ahead (joins), /p1 is behind.
    let late = submit(
        &mut lib,
        "r2",
        vec![file("/p3", on("V", 3, 1)), file("/p1", on("V", 1, 1))],
        1,
    );
    lib.read_done(0, &first, Ok(1), 1);
    assert_eq!(read_of(lib.next_job(0, 1)).as_str(), "/p3");
    lib.read_done(0, &p("/p3"), Ok(1), 1);
    assert_eq!(read_of(lib.next_job(0, 1)).as_str(), "/p4");
    lib.read_done(0, &p("/p4"), Ok(1), 1);
    // The next round, on the same mounted volume.
    assert_eq!(read_of(lib.next_job(0, 1)).as_str(), "/p1");
    lib.read_done(0, &p("/p1"), Ok(1), 2);
    assert_eq!(lib.next_job(0, 2), None);
    assert_eq!(lib.admin_state(2).scheduler.mounts, 1);
    assert!(states(&lib, &late)
        .iter()
        .all(|(_, s)| *s == FileState::Completed));
}

#[test]
fn requests_share_a_recall_and_states_follow_the_drive() {
    let mut lib = lib(1, 1 << 30);
    let a = submit(&mut lib, "a", vec![file("/f", on("V", 1, 5))], 0);
    let b = submit(&mut lib, "b", vec![file("/f", on("V", 1, 5))], 0);
    assert_eq!(states(&lib, &a), [("/f".to_owned(), FileState::Submitted)]);
    assert_eq!(mount_of(lib.next_job(0, 1_000)), "V");
    lib.mount_done(0);
    let f = read_of(lib.next_job(0, 2_000));
    let view = lib.request_view(&a).expect("known");
    assert_eq!(view.files[0].state, FileState::Started);
    assert_eq!(
        (view.created_at, view.started_at, view.completed_at),
        (0, 2, None)
    );
    // A third request for the file being read is STARTED at once.
    let c = submit(&mut lib, "c", vec![file("/f", on("V", 1, 5))], 2_500);
    assert_eq!(states(&lib, &c), [("/f".to_owned(), FileState::Started)]);
    lib.read_done(0, &f, Ok(5), 3_000);
    for id in [&a, &b, &c] {
        let v = lib.request_view(id).expect("known");
        assert_eq!(v.files[0].state, FileState::Completed);
        assert_eq!(v.completed_at, Some(3));
    }
    assert_eq!(lib.admin_state(3_000).scheduler.mounts, 1);
    let pins = &lib.admin_state(3_000).buffer.files[0].pins;
    assert_eq!(pins.len(), 3, "one pin per request");
}
