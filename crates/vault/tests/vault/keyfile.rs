//! The key file: created private, refused when readable by others or hand-edited wrong,
//! several keys at once, changes seen by a running provider.

use std::os::unix::fs::PermissionsExt;
use toolbelt_vault::{KeyFileProvider, KeyProvider, VaultError};

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn the_key_file_is_created_private_and_holds_several_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data/vault-keys.json");
    let p = KeyFileProvider::open_or_create(&path).unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    let first = p.current_id().await.unwrap();
    assert!(first.starts_with("kek_") && first.len() == 20, "{first}");

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(json["format"], "toolbelt-vault-keys/1");
    assert_eq!(json["current"], first.as_str());
    assert_eq!(json["keys"][0]["key"].as_str().unwrap().len(), 64);

    // Another handle adds a key; the first sees it without being told.
    let other = KeyFileProvider::open_or_create(&path).unwrap();
    let second = other.add_key().unwrap();
    assert_eq!(mode(&path), 0o600, "rewrites stay private");
    assert_eq!(p.current_id().await.unwrap(), second);
    assert_eq!(
        p.key_ids().await.unwrap(),
        vec![second.clone(), first.clone()]
    );
    assert!(
        other.remove_key(&second).is_err(),
        "the current key cannot be removed"
    );
    assert!(other.remove_key("kek_0000000000000000").is_err());
    other.remove_key(&first).unwrap();
    assert_eq!(p.key_ids().await.unwrap(), vec![second]);
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no temporary files left behind");
}

#[test]
fn processes_starting_at_once_agree_on_one_first_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault-keys.json");
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    KeyFileProvider::open_or_create(&path)
                        .unwrap()
                        .ring()
                        .unwrap()
                        .ids()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(ids.len(), 8, "one key each");
    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
}

#[tokio::test]
async fn unsafe_or_inconsistent_key_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault-keys.json");
    let p = KeyFileProvider::open_or_create(&path).unwrap();
    let good = std::fs::read_to_string(&path).unwrap();

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = KeyFileProvider::open_or_create(&path).unwrap_err();
    assert!(err.to_string().contains("chmod 600"), "{err}");
    assert!(
        p.current_id().await.is_err(),
        "a running provider stops using it too"
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();

    let check = |text: String, want: &'static str| {
        let path = path.clone();
        async move {
            std::fs::write(&path, text).unwrap();
            match KeyFileProvider::open_or_create(&path) {
                Err(VaultError::Keys(m)) => assert!(m.contains(want), "{m} should say {want}"),
                other => panic!("expected a key error saying {want}, got {other:?}"),
            }
        }
    };
    let json: serde_json::Value = serde_json::from_str(&good).unwrap();
    let key = json["keys"][0]["key"].as_str().unwrap().to_string();
    check(
        good.replace(&key, &"00".repeat(32)),
        "does not match its key",
    )
    .await;
    check(good.replace(&key, "abcd"), "64 hex digits").await;
    check(good.replace("toolbelt-vault-keys/1", "v9"), "format").await;
    let cur = json["current"].as_str().unwrap();
    check(
        good.replacen(
            &format!("\"current\": \"{cur}\""),
            "\"current\": \"kek_1\"",
            1,
        ),
        "not in keys",
    )
    .await;
    check("{".into(), "key file").await;
    std::fs::write(&path, &good).unwrap();
    assert!(KeyFileProvider::open_or_create(&path).is_ok());
}
