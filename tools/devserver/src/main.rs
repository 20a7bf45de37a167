//! `devserver` binary: parses the command line, binds `127.0.0.1:$PORT`
//! (default 8080; `PORT=0` picks a free port) and, with `--cors-port` or
//! `CORS_PORT`, a second origin; prints the ready line(s) and serves
//! forever. All the work is in the `longhaul_devserver` library.

#![forbid(unsafe_code)]

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;

use longhaul_devserver::{serve_origins, Config};

const USAGE: &str = "usage: devserver [--root <dir>] [--pkg <dir>] [--cors-port <port>]
  --root <dir>        static site directory (default: www)
  --pkg <dir>         built wasm package, served at /pkg/ (default: pkg)
  --cors-port <port>  also serve a second origin on 127.0.0.1:<port>
                      (0 = any free port; default: env CORS_PORT, else none)
  env PORT            port on 127.0.0.1 (default: 8080; 0 = any free port)";

/// The command line.
#[derive(Debug, Default)]
struct Cli {
    config: Config,
    cors_port: Option<u16>,
}

fn parse_port(what: &str, value: &str) -> Result<u16, String> {
    value
        .trim()
        .parse::<u16>()
        .map_err(|_| format!("{what} must be a number from 0 to 65535, got {value:?}"))
}

fn parse_cli(args: impl IntoIterator<Item = String>) -> Result<Cli, String> {
    let mut cli = Cli::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let needs = match flag.as_str() {
            "--root" | "--pkg" => "a directory",
            "--cors-port" => "a port",
            "-h" | "--help" => return Err(String::new()),
            _ => return Err(format!("unknown argument: {arg}")),
        };
        let value = inline
            .or_else(|| args.next())
            .ok_or_else(|| format!("{flag} needs {needs}"))?;
        match flag.as_str() {
            "--root" => cli.config.root = PathBuf::from(value),
            "--pkg" => cli.config.pkg = PathBuf::from(value),
            _ => cli.cors_port = Some(parse_port("--cors-port", &value)?),
        }
    }
    // Resolve against the current directory once, up front.
    if let Ok(cwd) = std::env::current_dir() {
        cli.config.root = cwd.join(&cli.config.root);
        cli.config.pkg = cwd.join(&cli.config.pkg);
    }
    Ok(cli)
}

#[cfg(test)]
fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Config, String> {
    parse_cli(args).map(|cli| cli.config)
}

fn bind(what: &str, port: u16) -> Result<(TcpListener, u16), String> {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .map_err(|e| format!("cannot listen on 127.0.0.1:{port}{what}: {e}"))?;
    let port = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?
        .port();
    Ok((listener, port))
}

fn main() -> ExitCode {
    let cli = match parse_cli(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(msg) => {
            if msg.is_empty() {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            eprintln!("devserver: {msg}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let Cli { config, cors_port } = cli;
    let port = match std::env::var("PORT") {
        Err(_) => 8080,
        Ok(p) => match p.trim().parse::<u16>() {
            Ok(p) => p,
            Err(_) => {
                eprintln!("devserver: PORT must be a number from 0 to 65535, got {p:?}");
                return ExitCode::from(2);
            }
        },
    };
    let cors_port = match (cors_port, std::env::var("CORS_PORT")) {
        (Some(p), _) => Some(p),
        (None, Ok(p)) if !p.trim().is_empty() => match parse_port("CORS_PORT", &p) {
            Ok(p) => Some(p),
            Err(msg) => {
                eprintln!("devserver: {msg}");
                return ExitCode::from(2);
            }
        },
        (None, _) => None,
    };
    for (what, dir) in [("--root", &config.root), ("--pkg", &config.pkg)] {
        if !dir.is_dir() {
            eprintln!(
                "devserver: warning: {what} {} is not a directory (yet)",
                dir.display()
            );
        }
    }
    let (listener, port) = match bind("", port) {
        Ok(l) => l,
        Err(msg) => {
            eprintln!("devserver: {msg}");
            return ExitCode::FAILURE;
        }
    };
    let cors = match cors_port.map(|p| bind(" (cors origin)", p)).transpose() {
        Ok(c) => c,
        Err(msg) => {
            eprintln!("devserver: {msg}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "longhaul devserver: http://127.0.0.1:{port}/");
    if let Some((_, cors_port)) = &cors {
        let _ = writeln!(
            out,
            "longhaul devserver cors origin: http://127.0.0.1:{cors_port}/"
        );
    }
    let _ = out.flush();
    drop(out);
    serve_origins(listener, cors.map(|(l, _)| l), config);
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags() {
        let c = parse_args(args(&["--root", "site", "--pkg=out/pkg"])).unwrap_or_default();
        assert!(c.root.ends_with("site") && c.root.is_absolute());
        assert!(c.pkg.ends_with("out/pkg"));
        let d = parse_args(args(&[])).unwrap_or_else(|_| Config {
            root: "x".into(),
            pkg: "x".into(),
        });
        assert!(d.root.ends_with("www") && d.pkg.ends_with("pkg"));
        assert!(parse_args(args(&["--root"])).is_err());
        assert!(parse_args(args(&["--nope"])).is_err());
        assert_eq!(parse_args(args(&["--help"])).err(), Some(String::new()));
    }

    #[test]
    fn cors_port_flag() {
        let port = |a: &[&str]| parse_cli(args(a)).map(|c| c.cors_port);
        assert_eq!(port(&[]), Ok(None));
        assert_eq!(port(&["--cors-port", "0"]), Ok(Some(0)));
        assert_eq!(port(&["--cors-port=8081", "--root", "x"]), Ok(Some(8081)));
        assert!(port(&["--cors-port"]).is_err());
        assert!(port(&["--cors-port", "70000"]).is_err_and(|m| m.contains("--cors-port")));
        assert!(port(&["--cors-port", "x"]).is_err());
    }
}
