//! TLS to etcd (`--etcd https://… --etcd-ca --etcd-cert --etcd-key`),
//! against a real etcd member that serves clients over TLS only and checks
//! their certificates (`--client-cert-auth`), with a CA, a member
//! certificate and client certificates made by openssl for this run.
//!
//! In a build with `--features etcd-tls` (CI's second build): a gateway
//! with the right files serves updates through it; one with another CA, or
//! without a client certificate, does not start and says why. In the default
//! build: a gateway given an https:// URL refuses to start and says how to
//! build one that can. Where etcd or openssl is missing the tests are
//! reported as ignored, with the reason (under `CI=true`, failed).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Lines, Running, Server, free_port, run_server, spawn_piped};

const ETCD: &str = "etcd";

fn main() {
    let missing = [(ETCD, "--version"), ("openssl", "version")]
        .into_iter()
        .find_map(
            |(program, arg)| match Command::new(program).arg(arg).output() {
                Ok(_) => None,
                Err(e) => Some(format!("cannot run {program}: {e}")),
            },
        );
    let tests: Vec<common::Needing> = if cfg!(feature = "etcd-tls") {
        vec![
            (
                "a_gateway_with_the_cas_files_serves_through_a_tls_etcd",
                Box::new(a_gateway_with_the_cas_files_serves_through_a_tls_etcd),
            ),
            (
                "a_gateway_that_cannot_prove_or_check_who_it_talks_to_does_not_start",
                Box::new(a_gateway_that_cannot_prove_or_check_who_it_talks_to_does_not_start),
            ),
        ]
    } else {
        vec![(
            "a_build_without_tls_refuses_https_and_says_how_to_get_it",
            Box::new(a_build_without_tls_refuses_https_and_says_how_to_get_it),
        )]
    };
    common::run_needing(
        "etcd_tls",
        missing,
        "It needs etcd and openssl (apt-get install etcd-server openssl).",
        tests,
    )
}

/// A CA, a member certificate for 127.0.0.1, a client certificate, and a
/// second CA that signed none of them.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn make() -> Result<Pki, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let pki = Pki { dir };
        for ca in ["ca", "other-ca"] {
            pki.openssl(&[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.pem"),
                "-days",
                "2",
                "-subj",
                &format!("/CN=status-board test {ca}"),
            ])?;
        }
        for (name, usage, san) in [
            (
                "member",
                "serverAuth,clientAuth",
                "subjectAltName=IP:127.0.0.1\n",
            ),
            ("client", "clientAuth", ""),
        ] {
            pki.openssl(&[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={name}"),
            ])?;
            let ext = format!("{san}extendedKeyUsage={usage}\n");
            std::fs::write(pki.path(&format!("{name}.ext")), ext).map_err(|e| e.to_string())?;
            pki.openssl(&[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &format!("{name}.pem"),
                "-days",
                "2",
                "-extfile",
                &format!("{name}.ext"),
            ])?;
            let key = pki.path(&format!("{name}.key"));
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| e.to_string())?;
        }
        Ok(pki)
    }

    fn openssl(&self, args: &[&str]) -> Result<(), String> {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .map_err(|e| format!("openssl: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(())
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    fn arg(&self, file: &str) -> String {
        self.path(file).display().to_string()
    }
}

/// One etcd member serving clients over TLS only, checking their certificates.
struct TlsMember {
    url: String,
    _child: Running,
    stderr: Lines,
}

impl TlsMember {
    fn start(pki: &Pki, data: &Path) -> TlsMember {
        let client = free_port();
        let peer = free_port();
        let url = format!("https://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let (child, _stdout, stderr) = spawn_piped(
            Command::new(ETCD)
                .args(["--name", "tls1", "--data-dir"])
                .arg(data)
                .args([
                    "--listen-client-urls",
                    &url,
                    "--advertise-client-urls",
                    &url,
                ])
                .args(["--listen-peer-urls", &peer_url])
                .args(["--initial-advertise-peer-urls", &peer_url])
                .args(["--initial-cluster", &format!("tls1={peer_url}")])
                .args(["--cert-file", &pki.arg("member.pem")])
                .args(["--key-file", &pki.arg("member.key")])
                .args([
                    "--trusted-ca-file",
                    &pki.arg("ca.pem"),
                    "--client-cert-auth",
                ])
                .stdin(Stdio::null()),
        );
        let member = TlsMember {
            url,
            _child: Running(child),
            stderr,
        };
        // etcd logs this once it serves clients (its log is JSON or text).
        member
            .stderr
            .find_within("serving client", Duration::from_secs(30));
        member
    }
}

/// A gateway to `member` with the CA and the client certificate.
fn tls_gateway(pki: &Pki, member: &TlsMember) -> Server {
    Server::start_raw(&[
        "--bind",
        "tcp://127.0.0.1:*",
        "--etcd",
        &member.url,
        "--etcd-ca",
        &pki.arg("ca.pem"),
        "--etcd-cert",
        &pki.arg("client.pem"),
        "--etcd-key",
        &pki.arg("client.key"),
    ])
}

fn a_gateway_with_the_cas_files_serves_through_a_tls_etcd() -> Result<(), String> {
    let pki = Pki::make()?;
    let data = tempfile::tempdir().map_err(|e| e.to_string())?;
    let member = TlsMember::start(&pki, &data.path().join("member"));
    let gateway = tls_gateway(&pki, &member);
    let reply = gateway.request_text("tls: over TLS");
    assert_eq!(reply, "- tls: over TLS\n", "the update's reply");
    // A second gateway loads what the first wrote: it went to etcd, not
    // just into the first one's copy.
    let second = tls_gateway(&pki, &member);
    assert_eq!(second.request_text("_:"), "- tls: over TLS\n");
    Ok(())
}

fn a_gateway_that_cannot_prove_or_check_who_it_talks_to_does_not_start() -> Result<(), String> {
    let pki = Pki::make()?;
    let data = tempfile::tempdir().map_err(|e| e.to_string())?;
    let member = TlsMember::start(&pki, &data.path().join("member"));
    let ca = pki.arg("ca.pem");
    let other_ca = pki.arg("other-ca.pem");
    let cert = pki.arg("client.pem");
    let key = pki.arg("client.key");
    let cases: [(&str, Vec<&str>, &str); 3] = [
        (
            "a CA that did not sign the member's certificate",
            vec![
                "--etcd-ca",
                &other_ca,
                "--etcd-cert",
                &cert,
                "--etcd-key",
                &key,
            ],
            "UnknownIssuer",
        ),
        (
            "no client certificate for an etcd that checks them",
            vec!["--etcd-ca", &ca],
            "cannot load the board from etcd",
        ),
        ("no CA for an https:// URL", vec![], "need --etcd-ca"),
    ];
    for (case, extra, said) in cases {
        let mut args = vec!["0", "--etcd", &member.url];
        args.extend(extra);
        let (code, _, stderr) = run_server(&args);
        assert_eq!(code, Some(1), "{case}: exit code; stderr: {stderr}");
        assert!(stderr.contains(said), "{case}: says {said:?}: {stderr}");
    }
    // A client key others may read is refused before any connection.
    std::fs::set_permissions(
        pki.path("client.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .map_err(|e| e.to_string())?;
    let (code, _, stderr) = run_server(&[
        "0",
        "--etcd",
        &member.url,
        "--etcd-ca",
        &ca,
        "--etcd-cert",
        &cert,
        "--etcd-key",
        &key,
    ]);
    assert_eq!(code, Some(1), "an exposed key: {stderr}");
    assert!(stderr.contains("etcd client key"), "{stderr}");
    Ok(())
}

fn a_build_without_tls_refuses_https_and_says_how_to_get_it() -> Result<(), String> {
    let pki = Pki::make()?;
    let data = tempfile::tempdir().map_err(|e| e.to_string())?;
    let member = TlsMember::start(&pki, &data.path().join("member"));
    let (code, _, stderr) =
        run_server(&["0", "--etcd", &member.url, "--etcd-ca", &pki.arg("ca.pem")]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("--features etcd-tls"), "{stderr}");
    Ok(())
}
