use super::*;

fn args(plan: &Plan) -> Vec<String> {
    bwrap_args(plan)
        .into_iter()
        .map(|a| a.into_string().unwrap())
        .collect()
}

/// The index of the `n`-argument option `opt` with exactly these values, if present.
fn find(a: &[String], opt: &[&str]) -> Option<usize> {
    a.windows(opt.len()).position(|w| w == opt)
}

fn bind(p: &str) -> PathBuf {
    PathBuf::from(p)
}

fn plan() -> Plan {
    Plan {
        argv: vec!["/opt/srv/venv/bin/python".into(), "-m".into(), "srv".into()],
        command_files: vec![bind("/opt/srv/venv")],
        secrets_dir: Some(PathBuf::from("/dev/shm/toolbelt-tbx/srv_1-1")),
        protected: vec![
            Protected {
                path: PathBuf::from("/var/lib/toolbelt"),
                file: false,
            },
            Protected {
                path: PathBuf::from("/dev/shm/toolbelt-tbx"),
                file: false,
            },
        ],
        network: false,
        run_as: None,
    }
}

#[test]
fn a_sandbox_is_an_allow_list_of_read_only_system_dirs_and_the_commands_own_files() {
    let a = args(&plan());
    for ns in [
        "--unshare-user",
        "--disable-userns",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-net",
        "--die-with-parent",
        "--new-session",
    ] {
        assert!(a.iter().any(|x| x == ns), "{ns} missing: {a:?}");
    }
    for d in ["/usr", "/etc", "/lib64"] {
        assert!(find(&a, &["--ro-bind-try", d, d]).is_some(), "{d}: {a:?}");
    }
    assert!(
        !a.iter().any(|x| x == "--bind" || x == "--bind-try"),
        "nothing is bound writable: {a:?}"
    );
    assert!(
        !a.windows(2)
            .any(|w| w[0].starts_with("--ro-bind") && w[1] == "/"),
        "never the whole root: {a:?}"
    );
    assert!(find(&a, &["--ro-bind", "/opt/srv/venv", "/opt/srv/venv"]).is_some());
    assert!(
        find(
            &a,
            &["--ro-bind", "/dev/shm/toolbelt-tbx/srv_1-1", "/run/secrets"]
        )
        .is_some()
    );
    assert!(find(&a, &["--perms", "1777", "--tmpfs", "/tmp"]).is_some());
    assert!(find(&a, &["--perms", "0777", "--tmpfs", SANDBOX_HOME]).is_some());
    assert!(find(&a, &["--proc", "/proc"]).is_some());
    assert!(find(&a, &["--dev", "/dev"]).is_some());
    // Protected paths that no bind shows are left alone (nothing to cover).
    assert!(find(&a, &["--tmpfs", "/var/lib/toolbelt"]).is_none());
    // The command comes last, after `--`, unchanged.
    assert_eq!(
        a.iter().filter(|x| *x == "--").count(),
        1,
        "no setpriv: {a:?}"
    );
    let dash = a.iter().position(|x| x == "--").unwrap();
    assert_eq!(a[dash + 1..], ["/opt/srv/venv/bin/python", "-m", "srv"]);
    assert!(find(&a, &["--chdir", SANDBOX_HOME]).unwrap() < dash);
}

#[test]
fn a_root_dtma_runs_the_command_as_its_server_user_through_setpriv() {
    let mut p = plan();
    p.command_files = vec![bind("/root/.pyenv/versions/3.11.7/lib")];
    p.run_as = Some(RunAs {
        uid: 1_900_000_042,
        setpriv: PathBuf::from("/usr/bin/setpriv"),
    });
    let a = args(&p);
    assert!(
        !a.iter().any(|x| x == "--unshare-user"),
        "a root bwrap: {a:?}"
    );
    // /root is made passable before the bind (bwrap would copy its 0700).
    let root = find(&a, &["--perms", "0755", "--dir", "/root"]).expect("/root made");
    let bind = find(&a, &["--ro-bind", "/root/.pyenv/versions/3.11.7/lib"]).unwrap();
    assert!(root < bind, "{a:?}");
    let dash = a.iter().position(|x| x == "--").unwrap();
    assert_eq!(
        a[dash - 4..dash],
        ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    );
    assert_eq!(a[dash + 1], "/usr/bin/setpriv");
    let cmd = a.iter().rposition(|x| x == "--").unwrap();
    let setpriv = &a[dash + 2..cmd];
    for flag in [
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
    ] {
        assert!(setpriv.iter().any(|x| x == flag), "{flag}: {setpriv:?}");
    }
    assert!(find(setpriv, &["--reuid", "1900000042", "--regid", "1900000042"]).is_some());
    assert_eq!(a[cmd + 1..], ["/opt/srv/venv/bin/python", "-m", "srv"]);
}

#[test]
fn network_is_kept_only_when_the_entry_asks_for_egress() {
    let mut p = plan();
    p.network = true;
    assert!(!args(&p).iter().any(|x| x == "--unshare-net"));
}

#[test]
fn a_protected_path_inside_a_bound_one_is_covered_after_the_binds() {
    let mut p = plan();
    p.command_files = vec![bind("/srv/app")];
    p.protected = vec![
        Protected {
            path: PathBuf::from("/srv/app/toolbelt-data"),
            file: false,
        },
        Protected {
            path: PathBuf::from("/etc/toolbelt/vault.key"),
            file: true,
        },
        Protected {
            path: PathBuf::from("/srv/application"),
            file: false,
        },
    ];
    let a = args(&p);
    let bind = find(&a, &["--ro-bind", "/srv/app", "/srv/app"]).unwrap();
    let cover = find(&a, &["--tmpfs", "/srv/app/toolbelt-data"]).expect("covered");
    assert!(bind < cover, "the cover comes after the bind: {a:?}");
    assert!(find(&a, &["--remount-ro", "/srv/app/toolbelt-data"]).is_some());
    let etc = find(&a, &["--ro-bind-try", "/etc", "/etc"]).unwrap();
    let key = find(&a, &["--ro-bind", "/dev/null", "/etc/toolbelt/vault.key"]).expect("a file");
    assert!(etc < key);
    // By path components: /srv/application is not under /srv/app.
    assert!(!a.iter().any(|x| x == "/srv/application"), "{a:?}");
}

#[test]
fn command_files_inside_a_protected_path_or_the_system_are_not_bound_again() {
    let mut p = plan();
    p.command_files = vec![bind("/var/lib/toolbelt/evil"), bind("/usr/bin/python3")];
    let a = args(&p);
    assert!(!a.iter().any(|x| x == "/var/lib/toolbelt/evil"), "{a:?}");
    assert!(find(&a, &["--ro-bind", "/usr/bin/python3", "/usr/bin/python3"]).is_none());
}

#[test]
fn a_command_needs_its_virtualenv_its_node_modules_or_only_its_file() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    // A virtualenv: bin/python is a link to the system's, pyvenv.cfg beside bin.
    let venv = root.join("venv");
    std::fs::create_dir_all(venv.join("bin")).unwrap();
    std::fs::write(venv.join("pyvenv.cfg"), "home = /usr/bin\n").unwrap();
    std::os::unix::fs::symlink("/usr/bin/env", venv.join("bin/python")).unwrap();
    // A console script whose #! names the virtualenv's python.
    let script = root.join("tools/bin/srv");
    std::fs::create_dir_all(script.parent().unwrap()).unwrap();
    let python = venv.join("bin/python");
    std::fs::write(&script, format!("#!{}\nimport srv\n", python.display())).unwrap();
    let files = command_files(&script, &[], "/usr/bin", root);
    assert_eq!(files, vec![script.clone(), venv.clone()], "{files:?}");

    // npm: the outermost node_modules, where the package's dependencies are.
    let js = root.join("proj/node_modules/pkg/dist/index.js");
    std::fs::create_dir_all(js.parent().unwrap()).unwrap();
    std::fs::write(&js, "").unwrap();
    let files = command_files(
        Path::new("/usr/bin/env"),
        &[js.display().to_string(), "--flag".into()],
        "/usr/bin",
        root,
    );
    assert_eq!(files, vec![root.join("proj/node_modules")], "{files:?}");

    // An installation prefix (pyenv's): the interpreter and the prefix's lib beside bin.
    let py = root.join("pyenv/3.11/bin/python3.11");
    std::fs::create_dir_all(py.parent().unwrap()).unwrap();
    std::fs::create_dir_all(root.join("pyenv/3.11/lib/python3.11")).unwrap();
    std::fs::write(&py, "\x7fELF").unwrap();
    assert_eq!(
        command_files(&py, &[], "/usr/bin", root),
        vec![py.clone(), root.join("pyenv/3.11/lib")]
    );

    // A lone binary in a bin directory that is no virtualenv (~/.cargo/bin): the file.
    let bin = root.join("cargo/bin/srv");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::write(&bin, "\x7fELF").unwrap();
    assert_eq!(command_files(&bin, &[], "/usr/bin", root), vec![bin]);
}

#[test]
fn programs_are_found_on_path_or_relative_to_the_working_directory() {
    let sh = resolve_program("sh", "/nonexistent:/usr/bin:/bin", Path::new("/")).unwrap();
    assert!(sh.is_absolute() && sh.ends_with("sh"), "{sh:?}");
    assert_eq!(
        resolve_program("bin/sh", "", Path::new("/usr")),
        Some(PathBuf::from("/usr/bin/sh"))
    );
    assert_eq!(
        resolve_program("no-such-program-x", "/usr/bin", Path::new("/")),
        None
    );
}
