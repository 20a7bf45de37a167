//! `devserver` binary: parses the command line, binds `127.0.0.1:$PORT`
//! (default 8080; `PORT=0` picks a free port), prints the ready line and
//! serves forever. All the work is in the `longhaul_devserver` library.

#![forbid(unsafe_code)]

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;

use longhaul_devserver::{serve, Config};

const USAGE: &str = "usage: devserver [--root <dir>] [--pkg <dir>]
  --root <dir>  static site directory (default: www)
  --pkg <dir>   built wasm package, served at /pkg/ (default: pkg)
  env PORT      port on 127.0.0.1 (default: 8080; 0 = any free port)";

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Config, String> {
    let mut config = Config::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let slot = match flag.as_str() {
            "--root" => &mut config.root,
            "--pkg" => &mut config.pkg,
            "-h" | "--help" => return Err(String::new()),
            _ => return Err(format!("unknown argument: {arg}")),
        };
        let value = inline
            .or_else(|| args.next())
            .ok_or_else(|| format!("{flag} needs a directory"))?;
        *slot = PathBuf::from(value);
    }
    // Resolve against the current directory once, up front.
    if let Ok(cwd) = std::env::current_dir() {
        config.root = cwd.join(&config.root);
        config.pkg = cwd.join(&config.pkg);
    }
    Ok(config)
}

fn main() -> ExitCode {
    let config = match parse_args(std::env::args().skip(1)) {
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
    for (what, dir) in [("--root", &config.root), ("--pkg", &config.pkg)] {
        if !dir.is_dir() {
            eprintln!(
                "devserver: warning: {what} {} is not a directory (yet)",
                dir.display()
            );
        }
    }
    let listener = match TcpListener::bind(("127.0.0.1", port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("devserver: cannot listen on 127.0.0.1:{port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let port = match listener.local_addr() {
        Ok(addr) => addr.port(),
        Err(e) => {
            eprintln!("devserver: cannot read the bound address: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "longhaul devserver: http://127.0.0.1:{port}/");
    let _ = out.flush();
    drop(out);
    serve(listener, config);
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
}
