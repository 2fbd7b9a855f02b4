//! Shell completions and man pages, generated from a program's clap
//! definition so they never disagree with `--help`.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Command;
pub use clap_complete::Shell;

/// The `completions SHELL` subcommand's arguments.
#[derive(Clone, Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to print completions for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// The hidden `man DIR` subcommand's arguments (used when packaging).
#[derive(Clone, Debug, clap::Args)]
pub struct ManArgs {
    /// Folder to write the man pages to (section 1), made if missing.
    pub dir: PathBuf,
}

/// Prints `shell`'s completion script for `cmd` on stdout. A reader that
/// stops early (`| head`) is not an error.
pub fn print_completions(mut cmd: Command, shell: Shell) -> std::io::Result<()> {
    let name = cmd.get_name().to_string();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut script);
    match std::io::stdout().lock().write_all(&script) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Writes one man page for the program and one per visible subcommand
/// (`sprijin-console-catalog-sign.1`) into `dir`; returns the files.
pub fn write_man_pages(cmd: Command, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    let mut cmd = cmd;
    cmd.build();
    write_page(&cmd, cmd.get_name(), dir, &mut written)?;
    Ok(written)
}

fn write_page(
    cmd: &Command,
    page: &str,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone().name(page.to_string())).render(&mut buf)?;
    let path = dir.join(format!("{page}.1"));
    std::fs::File::create(&path)?.write_all(&buf)?;
    written.push(path);
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        write_page(sub, &format!("{page}-{}", sub.get_name()), dir, written)?;
    }
    Ok(())
}
