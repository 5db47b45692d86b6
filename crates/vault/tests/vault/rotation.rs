//! Rotating the key-encryption key while the service reads and writes secrets.

use crate::{name, store, user, vault_with};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use toolbelt_model::{Role, Scope};
use toolbelt_testkit::backend_tests;
use toolbelt_testkit::db::TestDb;
use toolbelt_vault::{KeyFileProvider, KeyProvider, Owner, SecretKind, Vault};

backend_tests!(rotating_the_kek_under_load_keeps_every_secret_readable);

const PER_USER: usize = 40;

#[derive(Default)]
struct Load {
    stop: AtomicBool,
    reads: AtomicU64,
    writes: AtomicU64,
    errors: Mutex<Vec<String>>,
    /// Last value written per (user, secret).
    last: Mutex<HashMap<(usize, usize), String>>,
}

async fn reader(v: Vault, users: Vec<Scope>, load: Arc<Load>) {
    let mut i = 0usize;
    while !load.stop.load(Ordering::Relaxed) {
        let (u, s) = (i % users.len(), (i / users.len()) % PER_USER);
        match v.get(&users[u], &format!("s{s}")).await {
            Ok(val)
                if val
                    .expose_str()
                    .is_some_and(|t| t.starts_with(&format!("u{u}s{s}:"))) => {}
            Ok(_) => load
                .errors
                .lock()
                .unwrap()
                .push(format!("u{u} s{s}: wrong value")),
            Err(e) => load
                .errors
                .lock()
                .unwrap()
                .push(format!("read u{u} s{s}: {e}")),
        }
        load.reads.fetch_add(1, Ordering::Relaxed);
        i += 7;
    }
}

async fn writer(v: Vault, u: usize, scope: Scope, load: Arc<Load>) {
    let mut n = 1;
    while !load.stop.load(Ordering::Relaxed) {
        let s = n % PER_USER;
        let value = format!("u{u}s{s}:{n}");
        match v
            .put(
                &scope,
                Owner::Caller,
                &name(&format!("s{s}")),
                SecretKind::Generic,
                value.as_str().into(),
            )
            .await
        {
            Ok(_) => {
                load.last.lock().unwrap().insert((u, s), value);
            }
            Err(e) => load
                .errors
                .lock()
                .unwrap()
                .push(format!("write u{u} s{s}: {e}")),
        }
        load.writes.fetch_add(1, Ordering::Relaxed);
        n += 1;
    }
}

async fn rotating_the_kek_under_load_keeps_every_secret_readable(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault-keys.json");
    let service_keys = Arc::new(KeyFileProvider::open_or_create(&path).unwrap());
    let old = service_keys.current_id().await.unwrap();
    let s = store(&db).await;
    let v = vault_with(s.clone(), service_keys.clone()).await;
    let users = vec![
        user(&s, "ann@x.io", Role::Member).await,
        user(&s, "root@x.io", Role::Admin).await,
    ];
    let load = Arc::new(Load::default());
    for (u, scope) in users.iter().enumerate() {
        for i in 0..PER_USER {
            let value = format!("u{u}s{i}:0");
            v.put(
                scope,
                Owner::Caller,
                &name(&format!("s{i}")),
                SecretKind::Generic,
                value.as_str().into(),
            )
            .await
            .unwrap();
            load.last.lock().unwrap().insert((u, i), value);
        }
    }

    let mut tasks = Vec::new();
    for _ in 0..2 {
        tasks.push(tokio::spawn(reader(v.clone(), users.clone(), load.clone())));
    }
    for (u, scope) in users.iter().enumerate() {
        tasks.push(tokio::spawn(writer(
            v.clone(),
            u,
            scope.clone(),
            load.clone(),
        )));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The operator adds a key from another process (here: another provider on the same
    // file); the running service picks it up from the file.
    let operator = KeyFileProvider::open_or_create(&path).unwrap();
    let new = operator.add_key().unwrap();
    assert_eq!(service_keys.current_id().await.unwrap(), new);
    let report = v.rotate_in_batches(16).await.unwrap();
    assert_eq!(report.kek_id, new);
    assert!(report.rewrapped > 0 && report.batches > 1, "{report:?}");
    assert!(report.unreadable.is_empty(), "{report:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    load.stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let errors = load.errors.lock().unwrap().clone();
    assert!(
        errors.is_empty(),
        "{} errors under load, first: {:?}",
        errors.len(),
        errors.first()
    );
    let (reads, writes) = (
        load.reads.load(Ordering::Relaxed),
        load.writes.load(Ordering::Relaxed),
    );
    assert!(reads > 10 && writes > 10, "reads {reads}, writes {writes}");
    println!(
        "{}: {reads} reads, {writes} writes during rotation; {report:?}",
        db.backend
    );

    // Nothing is left under the old key (a second run is harmless and settles stragglers),
    // so the operator deletes it; everything still opens, in this process and after a restart.
    let again = v.rotate().await.unwrap();
    assert_eq!(again.remaining, 0, "{again:?}");
    assert_eq!(
        v.kek_usage().await.unwrap(),
        vec![toolbelt_store::secrets::KekUsage {
            kek_id: new.clone(),
            secrets: 2 * PER_USER as i64,
            records: 0,
        }]
    );
    operator.remove_key(&old).unwrap();
    assert_eq!(service_keys.key_ids().await.unwrap(), vec![new.clone()]);
    let restarted = vault_with(
        s.clone(),
        Arc::new(KeyFileProvider::open_or_create(&path).unwrap()),
    )
    .await;
    let last = load.last.lock().unwrap().clone();
    for vault in [&v, &restarted] {
        for ((u, i), value) in &last {
            let got = vault.get(&users[*u], &format!("s{i}")).await.unwrap();
            assert_eq!(got.expose_str(), Some(value.as_str()));
        }
    }
}
