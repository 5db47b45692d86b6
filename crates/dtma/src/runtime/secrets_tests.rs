use super::*;

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn names_that_are_paths_write_nothing() {
    let base = tmp();
    let store = SecretStore::under(base.path(), "tbx_a", false).unwrap();
    for name in ["../x", "a/b", ".hidden", "", "x\0y"] {
        let secrets = BTreeMap::from([
            ("OK".to_string(), "v".to_string()),
            (name.to_string(), "stolen".to_string()),
        ]);
        let e = store.write("srv_1", 1, &secrets, None).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{name:?}: {e}");
    }
    for id in ["../x", "..", "a/b", ".x"] {
        let e = store.write(id, 1, &BTreeMap::new(), None).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{id:?}: {e}");
    }
    assert!(SecretStore::under(base.path(), "../x", false).is_err());
    assert!(
        entries(store.root()).is_empty(),
        "no server directory was made"
    );
    assert_eq!(
        entries(base.path()),
        vec!["toolbelt-tbx_a"],
        "nothing beside it"
    );
}

#[test]
fn a_planted_symlink_or_foreign_directory_is_refused() {
    let base = tmp();
    let elsewhere = tmp();
    std::os::unix::fs::symlink(elsewhere.path(), base.path().join("toolbelt-tbx_l")).unwrap();
    let e = SecretStore::under(base.path(), "tbx_l", false)
        .err()
        .unwrap();
    assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{e}");
    if euid() == 0 {
        let planted = base.path().join("toolbelt-tbx_f");
        std::fs::create_dir(&planted).unwrap();
        std::os::unix::fs::chown(&planted, Some(4242), Some(4242)).unwrap();
        let e = SecretStore::under(base.path(), "tbx_f", false)
            .err()
            .unwrap();
        assert!(
            e.to_string().contains("not a directory owned by this DTMA"),
            "{e}"
        );
    }
    assert!(entries(elsewhere.path()).is_empty());
}

#[test]
fn files_are_private_to_their_reader_and_the_root_is_unlistable() {
    let base = tmp();
    let store = SecretStore::under(base.path(), "tbx_p", false).unwrap();
    let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().mode() & 0o7777;
    assert_eq!(mode(store.root()), 0o700);
    let secrets = BTreeMap::from([("API_KEY".to_string(), "k".to_string())]);
    let dir = store.write("srv_1", 2, &secrets, Some(4242)).unwrap();
    let file = dir.join("API_KEY");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "k");
    if euid() == 0 {
        let m = std::fs::metadata(&file).unwrap();
        assert_eq!((m.uid(), m.mode() & 0o777), (4242, 0o400));
        assert_eq!(mode(&dir), 0o500);
    } else {
        assert_eq!(mode(&file), 0o444);
    }
    // A rewrite of the same generation replaces it; removal takes it all.
    store.write("srv_1", 2, &secrets, Some(4242)).unwrap();
    store.remove_all_but("srv_1", None);
    assert!(entries(store.root()).is_empty());
    let t = SecretStore::under(base.path(), "tbx_p", true).unwrap();
    assert_eq!(mode(t.root()), 0o711, "traversable for per-server users");
}
