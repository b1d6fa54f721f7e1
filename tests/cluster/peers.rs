//! The network between etcd members: one TCP proxy in front of each member's
//! peer port, so that a test can cut one member off from the others.
//!
//! Every member advertises its proxy's port as its peer URL, so all Raft
//! traffic to member `i` crosses proxy `i`. Which member *sent* a connection
//! is read from the kernel (the connecting socket's inode in /proc/net/tcp,
//! then whose /proc/PID/fd holds it): etcd offers no way to pick the source
//! address of its peer connections, and all of loopback looks alike. Cutting
//! member `i` closes every connection to or from it and refuses new ones, in
//! both directions, as a pulled cable would (only faster to notice).

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// The proxies in front of every member, and what is cut.
pub struct Network {
    /// Where members reach member `i`: its proxy's port.
    pub proxy_ports: Vec<u16>,
    shared: Arc<Shared>,
}

struct Shared {
    /// Member `i`'s real peer port, where its proxy forwards.
    targets: Vec<AtomicU16>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Members cut off from all others.
    cut: HashSet<usize>,
    /// Each member's process, to tell who opened a connection.
    pids: Vec<Option<u32>>,
    /// Open proxied connections: destination member, sending member (if
    /// known), and both sockets (to close them on a cut).
    open: Vec<(usize, Option<usize>, TcpStream, TcpStream)>,
}

impl State {
    /// A connection from `sender` to `destination` may not pass. One from an
    /// unknown sender may not pass during a cut: better a test that fails
    /// than a partition that leaks.
    fn blocked(&self, destination: usize, sender: Option<usize>) -> bool {
        self.cut.contains(&destination)
            || match sender {
                Some(sender) => self.cut.contains(&sender),
                None => !self.cut.is_empty(),
            }
    }
}

impl Network {
    /// Proxies for `members` members, each listening on a port it keeps.
    pub fn start(members: usize) -> Network {
        let shared = Arc::new(Shared {
            targets: (0..members).map(|_| AtomicU16::new(0)).collect(),
            state: Mutex::new(State {
                pids: vec![None; members],
                ..State::default()
            }),
        });
        let proxy_ports = (0..members)
            .map(|destination| {
                let listener = TcpListener::bind("127.0.0.1:0").expect("bind a peer proxy");
                let port = listener.local_addr().expect("proxy address").port();
                let shared = Arc::clone(&shared);
                thread::spawn(move || accept(&listener, destination, &shared));
                port
            })
            .collect();
        Network {
            proxy_ports,
            shared,
        }
    }

    /// Member `i` now listens for peers on `port`.
    pub fn set_target(&self, member: usize, port: u16) {
        self.shared.targets[member].store(port, Ordering::SeqCst);
    }

    /// Member `i` now runs as `pid` (or not at all).
    pub fn set_pid(&self, member: usize, pid: Option<u32>) {
        self.shared.state.lock().expect("network state").pids[member] = pid;
    }

    /// Cuts `member` off from every other member: open connections closed,
    /// new ones refused, both ways.
    pub fn cut(&self, member: usize) {
        let mut state = self.shared.state.lock().expect("network state");
        state.cut.insert(member);
        let open = std::mem::take(&mut state.open);
        for connection in open {
            if state.blocked(connection.0, connection.1) {
                let _ = connection.2.shutdown(Shutdown::Both);
                let _ = connection.3.shutdown(Shutdown::Both);
            } else {
                state.open.push(connection);
            }
        }
    }

    /// Lets every member reach every other again.
    pub fn heal(&self) {
        self.shared.state.lock().expect("network state").cut.clear();
    }
}

fn accept(listener: &TcpListener, destination: usize, shared: &Shared) {
    for incoming in listener.incoming() {
        let Ok(incoming) = incoming else { continue };
        let Ok(from) = incoming.peer_addr() else {
            continue;
        };
        let pids = shared.state.lock().expect("network state").pids.clone();
        let sender = owner(from, &pids);
        let target = shared.targets[destination].load(Ordering::SeqCst);
        let Ok(outgoing) = TcpStream::connect(("127.0.0.1", target)) else {
            continue;
        };
        let mut state = shared.state.lock().expect("network state");
        if state.blocked(destination, sender) {
            // Dropped: closed at once, as a refused connection.
            continue;
        }
        let (Ok(a), Ok(b)) = (incoming.try_clone(), outgoing.try_clone()) else {
            continue;
        };
        state.open.retain(|c| c.2.peer_addr().is_ok());
        state.open.push((destination, sender, a, b));
        drop(state);
        for (mut from, mut to) in [
            (incoming.try_clone(), outgoing.try_clone()),
            (outgoing.try_clone(), incoming.try_clone()),
        ]
        .into_iter()
        .filter_map(|(a, b)| Some((a.ok()?, b.ok()?)))
        {
            thread::spawn(move || {
                let mut buffer = vec![0; 64 * 1024];
                while let Ok(n) = from.read(&mut buffer) {
                    if n == 0 || to.write_all(&buffer[..n]).is_err() {
                        break;
                    }
                }
                let _ = to.shutdown(Shutdown::Both);
                let _ = from.shutdown(Shutdown::Both);
            });
        }
    }
}

/// Which of `pids` holds the socket connected from `from` (its local address).
fn owner(from: SocketAddr, pids: &[Option<u32>]) -> Option<usize> {
    let inode = socket_inode(from)?;
    let wanted = format!("socket:[{inode}]");
    pids.iter().position(|pid| {
        let Some(pid) = pid else { return false };
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            return false;
        };
        fds.filter_map(Result::ok)
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == &*wanted))
    })
}

/// The inode of the IPv4 socket whose local address is `local`.
fn socket_inode(local: SocketAddr) -> Option<u64> {
    let SocketAddr::V4(local) = local else {
        return None;
    };
    // /proc/net/tcp writes an address as the u32 in host order of its bytes.
    let wanted = format!(
        "{:08X}:{:04X}",
        u32::from_le_bytes(local.ip().octets()),
        local.port()
    );
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|row| {
        let columns: Vec<&str> = row.split_whitespace().collect();
        (columns.get(1) == Some(&wanted.as_str()))
            .then(|| columns.get(9)?.parse().ok())
            .flatten()
    })
}
