//! Request states, pins, eviction, cancel, delete, release, forget.

use super::*;

#[test]
fn files_that_cannot_be_staged_fail_at_submission() {
    let mut lib = lib(1, 1 << 30);
    let health = |h| {
        Lookup::File(TapeFile {
            volume: "V".into(),
            position: 0,
            size: 9,
            health: h,
        })
    };
    let id = submit(
        &mut lib,
        "r",
        vec![
            file("/lost", health(Health::Lost)),
            file("/unavailable", health(Health::Unavailable)),
            file("/empty", on("V", 0, 0)),
            file("/missing", Lookup::Missing),
            file("/dir", Lookup::NotAFile),
            StageFile {
                raw: "relative".into(),
                resolved: Err("invalid path".into()),
                lifetime: None,
            },
            file("/lost", health(Health::Lost)),
        ],
        5_000,
    );
    let view = lib.request_view(&id).expect("known");
    assert_eq!(view.files.len(), 6, "a repeated path is reported once");
    for f in &view.files {
        assert_eq!(f.state, FileState::Failed, "{}", f.path);
        assert!(f.error.is_some());
        assert_eq!((f.started_at, f.finished_at), (Some(5), Some(5)));
    }
    assert_eq!(view.completed_at, Some(5));
    assert!(view.files[0]
        .error
        .as_deref()
        .is_some_and(|e| e.contains("LOST")));
    assert_eq!(lib.next_job(0, 5_000), None, "nothing to read");
    assert_eq!(
        lib.locality(&p("/lost"), &health(Health::Lost)),
        Some(Locality::Lost)
    );
    assert_eq!(
        lib.locality(&p("/unavailable"), &health(Health::Unavailable)),
        Some(Locality::Unavailable)
    );
    assert_eq!(
        lib.locality(&p("/empty"), &on("V", 0, 0)),
        Some(Locality::Empty)
    );
    assert_eq!(lib.locality(&p("/missing"), &Lookup::Missing), None);
}

#[test]
fn locality_follows_the_buffer() {
    let mut lib = lib(1, 1 << 30);
    let tape = on("V", 1, 4);
    assert_eq!(lib.locality(&p("/f"), &tape), Some(Locality::Tape));
    submit(&mut lib, "r", vec![file("/f", tape.clone())], 0);
    run_drive(&mut lib, 0, 0);
    assert_eq!(lib.locality(&p("/f"), &tape), Some(Locality::DiskAndTape));
    // Staging a file already on disk completes at once and pins it.
    let again = submit(&mut lib, "again", vec![file("/f", tape)], 1);
    assert_eq!(
        states(&lib, &again),
        [("/f".to_owned(), FileState::Completed)]
    );
    assert_eq!(lib.next_job(0, 1), None);
}

#[test]
fn unpinned_copies_go_oldest_first_and_pins_hold() {
    let mut lib = lib(1, 10);
    let a = submit(&mut lib, "a", vec![file("/a", on("V", 1, 4))], 0);
    run_drive(&mut lib, 0, 0);
    let b = submit(&mut lib, "b", vec![file("/b", on("V", 2, 4))], 1);
    run_drive(&mut lib, 0, 1);
    lib.release(&a, &["/a".into()]).expect("release");
    lib.release(&b, &["/b".into()]).expect("release");
    let c = submit(&mut lib, "c", vec![file("/c", on("V", 3, 4))], 2);
    run_drive(&mut lib, 0, 2);
    // 12 bytes > 10: the least recently used unpinned copy (/a) goes.
    let files: Vec<String> = lib
        .admin_state(2)
        .buffer
        .files
        .iter()
        .map(|f| f.path.to_string())
        .collect();
    assert_eq!(files, ["/b", "/c"]);
    // Pinned copies stay even over the limit.
    submit(&mut lib, "d", vec![file("/d", on("V", 4, 4))], 3);
    submit(&mut lib, "e", vec![file("/e", on("V", 5, 4))], 3);
    run_drive(&mut lib, 0, 3);
    let buffer = lib.admin_state(3).buffer;
    assert_eq!(buffer.bytes, 12, "/b went; /c, /d, /e are pinned");
    assert!(buffer.bytes > buffer.limit);
    assert_eq!(states(&lib, &c), [("/c".to_owned(), FileState::Completed)]);
}

#[test]
fn pins_expire_after_the_disk_lifetime() {
    let mut lib = lib(1, 4);
    let mut f = file("/a", on("V", 1, 4));
    f.lifetime = Some(Duration::from_secs(60));
    submit(&mut lib, "a", vec![f], 0);
    run_drive(&mut lib, 0, 0);
    assert_eq!(lib.admin_state(59_999).buffer.files[0].pins.len(), 1);
    assert!(lib.admin_state(60_000).buffer.files[0].pins.is_empty());
    // Expired, but the buffer has room: the copy stays, cached.
    assert!(lib.sweep(HOUR).is_empty());
    // Another copy needs the room.
    submit(&mut lib, "b", vec![file("/b", on("V", 2, 4))], HOUR);
    run_drive(&mut lib, 0, HOUR);
    let paths: Vec<String> = lib
        .admin_state(HOUR)
        .buffer
        .files
        .iter()
        .map(|f| f.path.to_string())
        .collect();
    assert_eq!(paths, ["/b"]);
}

#[test]
fn release_by_an_unknown_id_unpins_for_every_request() {
    let mut lib = lib(1, 1 << 30);
    let a = submit(&mut lib, "a", vec![file("/f", on("V", 1, 1))], 0);
    submit(&mut lib, "b", vec![file("/f", on("V", 1, 1))], 0);
    run_drive(&mut lib, 0, 0);
    assert_eq!(lib.admin_state(0).buffer.files[0].pins.len(), 2);
    // A known request must name its own files.
    assert!(lib.release(&a, &["/other".into()]).is_err());
    lib.release(&RequestId("gfal2-placeholder-id".into()), &["//f".into()])
        .expect("an unknown id releases by path");
    assert!(lib.admin_state(0).buffer.files[0].pins.is_empty());
    assert_eq!(states(&lib, &a), [("/f".to_owned(), FileState::Completed)]);
}

#[test]
fn a_file_released_before_it_lands_is_not_pinned() {
    let mut lib = lib(1, 1 << 30);
    let a = submit(&mut lib, "a", vec![file("/f", on("V", 1, 1))], 0);
    lib.release(&a, &["/f".into()]).expect("release");
    run_drive(&mut lib, 0, 0);
    assert!(lib.admin_state(0).buffer.files[0].pins.is_empty());
}

#[test]
fn cancel_needs_every_path_in_the_request_and_stops_queued_reads() {
    let mut lib = lib(1, 1 << 30);
    let a = submit(
        &mut lib,
        "a",
        vec![file("/x", on("V", 1, 1)), file("/y", on("V", 2, 1))],
        0,
    );
    let err = lib.cancel(&a, &["/x".into(), "/nope".into()], 1);
    assert!(err.is_err());
    assert_eq!(states(&lib, &a)[0].1, FileState::Submitted, "no change");
    lib.cancel(&a, &["/x".into()], 1).expect("cancel");
    assert_eq!(states(&lib, &a)[0].1, FileState::Cancelled);
    assert_eq!(run_drive(&mut lib, 0, 2), ["/y"], "/x is not read");
    // Cancelling a completed file keeps its state and drops its pin.
    lib.cancel(&a, &["/y".into()], 3).expect("cancel");
    assert_eq!(states(&lib, &a)[1].1, FileState::Completed);
    assert!(lib.admin_state(3).buffer.files[0].pins.is_empty());
    assert!(lib
        .cancel(&RequestId("zz".into()), &["/x".into()], 3)
        .is_err());
}

#[test]
fn delete_cancels_unpins_and_forgets() {
    let mut lib = lib(1, 1 << 30);
    let a = submit(&mut lib, "a", vec![file("/x", on("V", 1, 1))], 0);
    let b = submit(&mut lib, "b", vec![file("/x", on("V", 1, 1))], 0);
    lib.delete(&a, 1).expect("delete");
    assert!(lib.request_view(&a).is_none());
    assert!(lib.delete(&a, 1).is_err(), "gone");
    // b still wants /x: it is read, pinned for b only.
    run_drive(&mut lib, 0, 2);
    assert_eq!(states(&lib, &b)[0].1, FileState::Completed);
    let pins = &lib.admin_state(2).buffer.files[0].pins;
    assert_eq!(pins.len(), 1);
    assert_eq!(pins[0].request_id, b);
    lib.delete(&b, 3).expect("delete");
    assert!(lib.admin_state(3).buffer.files[0].pins.is_empty());
}

#[test]
fn a_read_error_fails_the_waiting_files() {
    let mut lib = lib(1, 1 << 30);
    let a = submit(&mut lib, "a", vec![file("/x", on("V", 1, 1))], 0);
    lib.next_job(0, 0);
    lib.mount_done(0);
    let x = read_of(lib.next_job(0, 0));
    lib.read_done(0, &x, Err("gone".into()), 1);
    let v = lib.request_view(&a).expect("known");
    assert_eq!(v.files[0].state, FileState::Failed);
    assert_eq!(v.files[0].error.as_deref(), Some("read error: gone"));
    assert!(lib.admin_state(1).buffer.files.is_empty());
}

#[test]
fn forget_drops_requests_queue_and_pins_but_keeps_copies() {
    let mut lib = lib(1, 1 << 30);
    let a = submit(&mut lib, "a", vec![file("/x", on("V", 1, 1))], 0);
    run_drive(&mut lib, 0, 0);
    submit(&mut lib, "b", vec![file("/y", on("W", 1, 1))], 1);
    lib.forget();
    assert!(lib.request_view(&a).is_none());
    let st = lib.admin_state(1);
    assert_eq!(st.scheduler.queued_files, 0);
    assert_eq!(st.buffer.files.len(), 1);
    assert!(st.buffer.files[0].pins.is_empty());
    assert_eq!(lib.next_job(0, 1), None);
}
