//! Free loopback ports, held while chosen so parallel tests do not collide.

use std::net::TcpListener as StdListener;

/// `n` distinct free loopback ports (held open together, then released).
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<StdListener> = (0..n)
        .map(|_| StdListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// Free ports whose +10000 neighbour (SeaweedFS's gRPC port) is free too:
/// both are held while choosing, so parallel tests do not collide.
pub(crate) fn free_ports_below(n: usize, max: u16) -> Vec<u16> {
    let mut held = Vec::new();
    let mut ports = Vec::new();
    while ports.len() < n {
        let a = StdListener::bind("127.0.0.1:0").unwrap();
        let p = a.local_addr().unwrap().port();
        if p < max {
            if let Ok(b) = StdListener::bind(("127.0.0.1", p + 10_000)) {
                ports.push(p);
                held.push(b);
            }
        }
        held.push(a);
    }
    ports
}

/// `n` consecutive free ports, all held while choosing.
pub(crate) fn free_block(n: u16) -> u16 {
    loop {
        let first = StdListener::bind("127.0.0.1:0").unwrap();
        let p = first.local_addr().unwrap().port();
        if p > 65_000 {
            continue;
        }
        let rest: Vec<_> = (1..n)
            .filter_map(|i| StdListener::bind(("127.0.0.1", p + i)).ok())
            .collect();
        if rest.len() == usize::from(n - 1) {
            return p;
        }
    }
}
