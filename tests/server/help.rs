//! What each program says of itself: `--version`, `--help`, completions,
//! the man page, and the README's commands that install them.

use std::path::Path;
use std::process::Command;

use crate::common::{self, run_command, run_server};

#[test]
fn every_program_says_who_it_is_and_generates_completions_and_a_man_page() {
    for (program, name) in [
        (env!("CARGO_BIN_EXE_status_server"), "status_server"),
        (env!("CARGO_BIN_EXE_status_client"), "status_client"),
        (env!("CARGO_BIN_EXE_status_web"), "status_web"),
    ] {
        let run = |args: &[&str]| {
            let (code, stdout, stderr) = run_command(Command::new(program).args(args), "");
            assert_eq!(code, Some(0), "{name} {args:?}: {stderr}");
            stdout
        };
        assert!(run(&["--version"]).starts_with(&format!("{name} ")));
        assert!(
            run(&["--help"]).contains("--generate <WHAT>"),
            "{name} --help shows --generate"
        );
        assert!(run(&["--generate", "bash"]).contains(&format!("_{name}()")));
        assert!(run(&["--generate", "zsh"]).contains(&format!("#compdef {name}")));
        assert!(run(&["--generate", "fish"]).contains(&format!("complete -c {name}")));
        let man = run(&["--generate", "man"]);
        assert!(man.contains(&format!(".TH {name} 1")), "{man}");
        // The mode of its own, in a synopsis form of its own.
        assert!(
            man.contains(&format!(
                ".SY {name}\n\\fB\\-\\-generate\\fR\\~\\fIWHAT\\fR\n.YS\n"
            )),
            "{man}"
        );
    }
}

/// A line of the man page's roff as it reads: the escapes `cli.rs` writes undone.
fn unroff(line: &str) -> String {
    line.trim_start_matches("\\&")
        .replace("\\-", "-")
        .replace("\\(aq", "'")
        .replace("\\(ga", "`")
        .replace("\\e", "\\")
}

#[test]
fn the_man_page_gives_flags_their_values_and_keeps_the_examples_line_for_line() {
    let run = |arg: &str| {
        let (code, stdout, stderr) = run_server(&[arg]);
        assert_eq!(code, Some(0), "{arg}: {stderr}");
        stdout
    };
    let man = run("--generate=man");
    let synopsis = &man[man.find(".SH SYNOPSIS").expect("a synopsis")
        ..man.find(".SH DESCRIPTION").expect("a description")];
    for word in [
        "[\\fB\\-\\-state\\fR\\~\\fIPATH\\fR]",
        "[\\fB\\-\\-fsync\\fR\\~\\fIPOLICY\\fR]",
        "[\\fB\\-\\-bind\\fR\\~\\fIENDPOINT\\fR]...",
        "[\\fB\\-q\\fR|\\fB\\-\\-quiet\\fR]",
        "[\\fIPORT\\fR]",
        ".SY status_server\n\\fB\\-\\-hash\\-password\\fR\n.YS",
    ] {
        assert!(synopsis.contains(word), "{word} in {synopsis}");
    }
    // The examples of --help, each a line of an example block (no filling).
    let help = run("--help");
    let examples: Vec<&str> = help
        .lines()
        .skip_while(|line| *line != "Examples:")
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .collect();
    assert!(examples.len() >= 5, "{help}");
    let block: Vec<String> = man
        .lines()
        .skip_while(|line| *line != ".EX")
        .skip(1)
        .take_while(|line| *line != ".EE")
        .map(unroff)
        .collect();
    let examples: Vec<String> = examples.iter().map(|l| l.trim().to_owned()).collect();
    assert_eq!(block, examples);
    assert!(
        examples.iter().all(|line| line.len() <= 69),
        "each fits a man page 80 columns wide (7 indent and 2 more): {examples:#?}"
    );
}

/// The commands of the README's console block that holds `needle`, without
/// their prompts (`$ `, and `> ` for a continued line).
fn readme_commands(needle: &str) -> Vec<String> {
    let readme = include_str!("../../README.md");
    let block = readme
        .split("```console\n")
        .skip(1)
        .filter_map(|rest| rest.split_once("```").map(|(block, _)| block))
        .find(|block| block.contains(needle))
        .unwrap_or_else(|| panic!("a README block with {needle}"));
    block
        .lines()
        .filter_map(|line| line.strip_prefix("$ ").or_else(|| line.strip_prefix("> ")))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_readmes_completion_and_man_page_commands_work_on_a_fresh_account() {
    let home = tempfile::tempdir().expect("temp dir");
    // Where `cargo install` puts the programs: the only thing there yet.
    let bin = home.path().join(".cargo/bin");
    std::fs::create_dir_all(&bin).expect("~/.cargo/bin");
    for program in [
        env!("CARGO_BIN_EXE_status_server"),
        env!("CARGO_BIN_EXE_status_client"),
        env!("CARGO_BIN_EXE_status_web"),
    ] {
        let name = Path::new(program).file_name().expect("a name");
        std::os::unix::fs::symlink(program, bin.join(name)).expect("link");
    }
    let commands = readme_commands("--generate man");
    // `man status_server` shows the page: an interactive pager, not run here.
    let script: Vec<&str> = commands
        .iter()
        .map(String::as_str)
        .filter(|command| !command.starts_with("man "))
        .collect();
    assert!(script[0].starts_with("mkdir -p "), "{script:?}");
    let output = common::run_with_input(
        Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script.join("\n")])
            .env("HOME", home.path())
            .env_remove("XDG_DATA_HOME")
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display())),
        "",
        common::EXIT_TIMEOUT,
    );
    assert!(output.status.success(), "{output:?}");
    for name in ["status_server", "status_client", "status_web"] {
        let read = |path: &str| {
            std::fs::read_to_string(home.path().join(path))
                .unwrap_or_else(|e| panic!("{path}: {e}"))
        };
        let completion = read(&format!(".local/share/bash-completion/completions/{name}"));
        assert!(completion.contains(&format!("_{name}()")), "{name}");
        // man finds pages in ../share/man beside each directory on PATH.
        let page = read(&format!(".cargo/share/man/man1/{name}.1"));
        assert!(page.contains(&format!(".TH {name} 1")), "{name}");
    }
}

#[test]
fn the_readme_installs_with_the_locked_versions() {
    let install = readme_commands("cargo install");
    assert_eq!(install, ["cargo install --locked --path ."]);
}
