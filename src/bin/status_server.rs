//! `status_server`: the status board server, a drop-in for the Python original.

// The library's `sys` holds every C call; a program has none of its own.
#![deny(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use clap::builder::TypedValueParser;
use status_board::cli::{self, EXIT_INTERRUPTED};
use status_board::protocol::{DEFAULT_MAX_NAME, DEFAULT_MAX_REQUEST, Limits};
use status_board::server::{self, Config, DEFAULT_MAX_ENTRIES, Listen, StateConfig};
use status_board::shutdown::{Hangup, Shutdown};
use status_board::storage::{DEFAULT_COMPACT_AT, Fsync, StorageOptions};
use status_board::{ClusterConfig, EtcdCredentials, EtcdTlsFiles};

/// Keeps a name → status board and answers every request with the whole board.
///
/// Wire-compatible with the Python original: a request `NAME: STATUS` stores a
/// status, `_:` polls; every reply is the board, one `- NAME: STATUS` line per
/// name. Bad requests get a one-line `error: ...` reply and change nothing.
///
/// The board survives restarts, crashes and kill -9: every update is appended
/// to a state file before it is acknowledged. By default the file is
/// $XDG_STATE_HOME/status-board/tcp-ADDRESS-PORT.log (or ~/.local/state/...).
///
/// Examples:
///   status_server                          # tcp://127.0.0.1:2345
///   status_server 5555 0.0.0.0             # tcp://0.0.0.0:5555
///   status_server --bind ipc:///tmp/board.sock --bind tcp://[::1]:2345
///   status_server --state /var/lib/status/board.log --fsync always
///   status_server --in-memory              # forget everything on exit
///   status_server --publish tcp://127.0.0.1:2346 --ttl 8h
///   status_server --auth users --anonymous tcp://0.0.0.0:2347
///   status_server --hash-password           # a line for the users file
///   status_server --etcd http://a:2379,http://b:2379,http://c:2379
///
/// A cluster (--etcd, docs/CLUSTER.md): run one status_server per machine, each
/// in front of the same etcd cluster. An update is acknowledged once a majority
/// of etcd has it on disk; polls are answered from a copy the gateway keeps in
/// step with etcd's watch. Without an etcd quorum updates are refused within
/// 2 s (`error: unavailable: ...`) and polls still answered, marked stale.
/// etcd's login: STATUS_BOARD_ETCD_USER and STATUS_BOARD_ETCD_PASSWORD, or
/// --etcd-credentials FILE.
///
/// Logins (--auth FILE): one user a line, NAME:PASSWORD-HASH[:RIGHTS], where
/// RIGHTS is self (the default: the name equal to the user's), ro (read
/// only) or self,GLOB,... (more names, with * and ?). The file must not be
/// readable by group or others. SIGHUP reloads it, all or nothing.
#[derive(Debug, Parser)]
#[command(name = "status_server", version, verbatim_doc_comment)]
struct Args {
    /// TCP port to listen on (0 picks a free one)
    #[arg(default_value_t = cli::DEFAULT_PORT)]
    port: u16,

    /// Interface address to listen on, IPv4 or IPv6
    #[arg(default_value = cli::DEFAULT_HOST)]
    host: String,

    /// Listen on a ZeroMQ endpoint instead of PORT/HOST (repeatable), e.g. tcp://0.0.0.0:2345, ipc:///tmp/status.sock
    #[arg(long = "bind", value_name = "ENDPOINT", conflicts_with_all = ["port", "host"])]
    bind: Vec<String>,

    /// Do not print a line for every update
    #[arg(short, long)]
    quiet: bool,

    /// Most names the board holds; a new name past it gets an error reply, existing names still update
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_ENTRIES,
          value_parser = clap::value_parser!(u64).range(1..).map(|n| n as usize))]
    max_entries: usize,

    /// Longest name, in bytes of UTF-8
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_NAME,
          value_parser = clap::value_parser!(u64).range(1..=65535).map(|n| n as usize))]
    max_name: usize,

    /// Largest request, in bytes; up to 64 KiB more gets an error reply, anything larger is dropped unread
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_REQUEST,
          value_parser = clap::value_parser!(u64).range(3..=(64 << 20)).map(|n| n as usize))]
    max_request: usize,

    /// State file [default: $XDG_STATE_HOME/status-board/tcp-ADDRESS-PORT.log]
    #[arg(long, value_name = "PATH")]
    state: Option<std::path::PathBuf>,

    /// Keep the board in memory only: it is lost when the server stops
    #[arg(long, conflicts_with_all = ["state", "fsync", "repair", "compact_at"])]
    in_memory: bool,

    /// Keep the board in an etcd cluster instead of a state file: this
    /// server is one of its gateways (run one per machine). Client URLs of
    /// its members, comma-separated, e.g.
    /// http://10.0.0.1:2379,http://10.0.0.2:2379,http://10.0.0.3:2379 [default: STATUS_BOARD_ETCD]
    #[arg(long, value_name = "URL,...", value_delimiter = ',',
          conflicts_with_all = ["state", "in_memory", "fsync", "repair", "compact_at"])]
    etcd: Vec<String>,

    /// Where in etcd the board lives: every key starts with it
    #[arg(long, value_name = "PREFIX", default_value = "/status-board/")]
    etcd_prefix: String,

    /// etcd's user and password, `USER:PASSWORD` on the first line of FILE
    /// (mode 0600) [default: STATUS_BOARD_ETCD_USER and STATUS_BOARD_ETCD_PASSWORD]
    #[arg(long, value_name = "FILE")]
    etcd_credentials: Option<std::path::PathBuf>,

    /// TLS to etcd (https:// URLs): the CA certificate(s) the members'
    /// certificates must chain to, PEM (needs a build with --features etcd-tls)
    #[arg(long, value_name = "FILE")]
    etcd_ca: Option<std::path::PathBuf>,

    /// With --etcd-ca: this gateway's client certificate, PEM, for an etcd
    /// that checks its clients (--client-cert-auth)
    #[arg(long, value_name = "FILE", requires_all = ["etcd_ca", "etcd_key"])]
    etcd_cert: Option<std::path::PathBuf>,

    /// The client certificate's private key, PEM, mode 0600
    #[arg(long, value_name = "FILE", requires = "etcd_cert")]
    etcd_key: Option<std::path::PathBuf>,

    /// With --etcd: first load a single server's state file into the
    /// cluster's board; names it has already keep their status there
    #[arg(long, value_name = "STATE_FILE")]
    import: Option<std::path::PathBuf>,

    /// When updates are forced to disk: always (before each reply; survives a
    /// power cut), everysec (once a second), no (when the OS decides). Every
    /// acknowledged update survives a crash or kill -9 with any of them.
    #[arg(long, value_name = "POLICY", default_value_t = Fsync::EverySec)]
    fsync: Fsync,

    /// If the state file is damaged, keep every valid record and move the damaged file aside
    #[arg(long)]
    repair: bool,

    /// Compact the state file once it is larger than this and twice the board
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_COMPACT_AT)]
    compact_at: u64,

    /// Publish every change on this ZeroMQ endpoint (repeatable), e.g.
    /// tcp://127.0.0.1:2346; watchers find it by asking and get changes pushed
    #[arg(long, value_name = "ENDPOINT")]
    publish: Vec<String>,

    /// Remove a status that was not refreshed for this long, e.g. 90s, 30m, 8h, 2days
    #[arg(long, value_name = "DURATION", value_parser = parse_ttl)]
    ttl: Option<std::time::Duration>,

    /// Require a login on every endpoint (but --anonymous ones): the users file
    #[arg(long, value_name = "FILE")]
    auth: Option<std::path::PathBuf>,

    /// Also listen here with no login, read only (repeatable; needs --auth):
    /// polls, snapshots and the original Python watcher work, writes are refused
    #[arg(long, value_name = "ENDPOINT", requires = "auth")]
    anonymous: Vec<String>,

    /// Read a password (on a terminal: asked twice, without echo; else one
    /// line of stdin), print its argon2id hash for the users file, and exit
    #[arg(long, exclusive = true)]
    hash_password: bool,

    /// Start each log line with an RFC 3339 time and say where each update
    /// came from (the first line, `Waiting for clients…`, stays as it is)
    #[arg(long)]
    log_time: bool,

    /// Write shell completions or a man page to stdout, and exit
    #[arg(long, value_name = "WHAT", exclusive = true)]
    generate: Option<status_board::cli::Generated>,

    /// With --auth: encrypt with CURVE and log users in by key (curve:KEY in
    /// the users file) instead of PLAIN; FILE is this server's key pair
    #[arg(long, value_name = "FILE", requires = "auth")]
    curve_secret: Option<std::path::PathBuf>,

    /// Write a new CURVE key pair to FILE (mode 0600), print its public key
    /// (clients give it as --server-key), and exit
    #[arg(long, value_name = "FILE", exclusive = true)]
    curve_keygen: Option<std::path::PathBuf>,
}

fn parse_ttl(text: &str) -> Result<std::time::Duration, String> {
    let ttl = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if ttl < std::time::Duration::from_secs(1) {
        return Err("must be at least 1s".into());
    }
    Ok(ttl)
}

/// `--etcd`, or `STATUS_BOARD_ETCD`, with its login: the cluster, if any.
fn cluster_config(args: &Args) -> Result<Option<ClusterConfig>, String> {
    let urls = match args.etcd.is_empty() {
        false => args.etcd.clone(),
        true => cli::env_text("STATUS_BOARD_ETCD")?
            .map(|list| list.split(',').map(|u| u.trim().to_owned()).collect())
            .unwrap_or_default(),
    };
    if urls.is_empty() {
        if args.import.is_some() {
            return Err("--import loads a state file into etcd: give --etcd too".into());
        }
        return Ok(None);
    }
    let credentials = match &args.etcd_credentials {
        Some(path) => Some(EtcdCredentials::from_file(path)?),
        None => match (
            cli::env_text("STATUS_BOARD_ETCD_USER")?,
            cli::env_text("STATUS_BOARD_ETCD_PASSWORD")?,
        ) {
            (Some(user), Some(password)) => Some(EtcdCredentials { user, password }),
            (None, None) => None,
            _ => {
                return Err(
                    "set both STATUS_BOARD_ETCD_USER and STATUS_BOARD_ETCD_PASSWORD, or neither"
                        .into(),
                );
            }
        },
    };
    if args.etcd_prefix.is_empty() {
        return Err("--etcd-prefix must not be empty: the board would take all of etcd".into());
    }
    let tls = args.etcd_ca.as_ref().map(|ca| EtcdTlsFiles {
        ca: ca.clone(),
        cert: args.etcd_cert.clone(),
        key: args.etcd_key.clone(),
    });
    Ok(Some(ClusterConfig {
        urls,
        prefix: args.etcd_prefix.clone(),
        credentials,
        tls,
    }))
}

impl Args {
    fn into_config(self, cluster: Option<ClusterConfig>) -> Config {
        let listen = if self.bind.is_empty() {
            Listen::PortHost {
                port: self.port,
                host: self.host,
            }
        } else {
            Listen::Endpoints(self.bind)
        };
        let state = if let Some(cluster) = cluster {
            StateConfig::Cluster {
                cluster,
                import: self.import,
            }
        } else if self.in_memory {
            StateConfig::InMemory
        } else {
            StateConfig::File {
                path: self.state,
                options: StorageOptions {
                    fsync: self.fsync,
                    compact_at: self.compact_at,
                    repair: self.repair,
                },
            }
        };
        Config {
            listen,
            state,
            limits: Limits {
                max_request: self.max_request,
                max_name: self.max_name,
            },
            max_entries: self.max_entries,
            quiet: self.quiet,
            publish: self.publish,
            ttl: self.ttl,
            auth: self.auth,
            anonymous: self.anonymous,
            curve_secret: self.curve_secret,
            log_time: self.log_time,
        }
    }
}

/// Why the program stops before its work is done.
enum Stop {
    /// Said once on stderr, exit 1.
    Error(String),
    /// Ctrl-C at a prompt: exit 130, as every Ctrl-C.
    Interrupted,
}

impl From<String> for Stop {
    fn from(message: String) -> Stop {
        Stop::Error(message)
    }
}

fn main() -> ExitCode {
    match try_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(Stop::Error(message)) => {
            eprintln!("status_server: error: {message}");
            ExitCode::FAILURE
        }
        Err(Stop::Interrupted) => {
            eprintln!("status_server: interrupted");
            ExitCode::from(EXIT_INTERRUPTED)
        }
    }
}

/// Runs the mode the arguments ask for; an error is reported once, by `main`.
fn try_main() -> Result<(), Stop> {
    let args = Args::parse();
    if let Some(what) = args.generate {
        return Ok(status_board::cli::generate(
            <Args as clap::CommandFactory>::command(),
            what,
        )?);
    }
    if args.hash_password {
        // The prompt reads Ctrl-C as a key and raises SIGINT itself, with the
        // terminal still silent: caught here (SIGINT only; SIGTERM still ends
        // the program), the prompt returns and puts the echo back.
        ctrlc::set_handler(|| {})
            .map_err(|e| format!("cannot handle Ctrl-C: {}", status_board::error_chain(&e)))?;
        return hash_password();
    }
    if let Some(path) = &args.curve_keygen {
        return Ok(curve_keygen(path)?);
    }
    if args.curve_secret.is_some() && !status_board::curve::available() {
        return Err(Stop::Error(status_board::curve::UNAVAILABLE.into()));
    }
    let cluster = cluster_config(&args)?;
    Ok(serve(args.into_config(cluster))?)
}

/// Serves until Ctrl-C or SIGTERM; SIGHUP reloads the users file.
fn serve(config: Config) -> Result<(), String> {
    let shutdown = Shutdown::on_signals(Hangup::Reloads, EXIT_INTERRUPTED)
        .map_err(|e| format!("cannot handle signals: {}", status_board::error_chain(&e)))?;
    server::run(config, &shutdown).map_err(|e| status_board::error_chain(&e))
}

/// `--hash-password`: one password, its PHC string on stdout. On a terminal
/// it is asked twice, since a typo no one sees would go into the users file
/// and lock its user out; from a pipe one line is read, as scripts give it.
fn hash_password() -> Result<(), Stop> {
    use std::io::{BufRead, IsTerminal};
    let password = if std::io::stdin().is_terminal() {
        let first = ask_password("Password: ")?;
        if ask_password("Password again: ")? != first {
            return Err(Stop::Error(
                "the two passwords differ; nothing was printed (run it again)".into(),
            ));
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password: {e}"))?;
        line
    };
    let password = password.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        return Err(Stop::Error("the password is empty".into()));
    }
    let hash = status_board::server::auth::hash_password(password)?;
    println!("{hash}");
    Ok(())
}

/// One password from the terminal, without echo; Ctrl-C there is
/// [`Stop::Interrupted`] (its SIGINT is caught in `try_main`).
fn ask_password(prompt: &str) -> Result<String, Stop> {
    rpassword::prompt_password(prompt).map_err(|e| match e.kind() {
        std::io::ErrorKind::Interrupted => Stop::Interrupted,
        _ => Stop::Error(format!("cannot read the password: {e}")),
    })
}

/// `--curve-keygen FILE`: a new key pair in FILE, its public key on stdout.
fn curve_keygen(path: &std::path::Path) -> Result<(), String> {
    let pair =
        status_board::curve::KeyPair::write_new(path).map_err(|e| status_board::error_chain(&e))?;
    println!("{}", pair.public_z85());
    Ok(())
}
