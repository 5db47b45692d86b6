//! Sealed records (chat turns) across a key rotation: rotation re-wraps their data keys, so
//! the old key can be deleted and every transcript still opens — also after a restart.

use crate::{name, store, user, vault_with};
use std::sync::Arc;
use toolbelt_model::{ChatId, Role};
use toolbelt_store::secrets::KekUsage;
use toolbelt_store::{agents, chats};
use toolbelt_testkit::backend_tests;
use toolbelt_testkit::db::TestDb;
use toolbelt_vault::{KeyFileProvider, KeyProvider, RecordBinding, TURN_KIND};

backend_tests!(rotation_re_wraps_sealed_chat_turns_so_the_old_key_can_be_deleted);

const TURNS: i64 = 7;

fn binding<'a>(owner: &'a toolbelt_model::UserId, chat: &'a str, seq: i64) -> RecordBinding<'a> {
    RecordBinding {
        kind: TURN_KIND,
        owner,
        id: chat,
        seq,
    }
}

async fn rotation_re_wraps_sealed_chat_turns_so_the_old_key_can_be_deleted(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault-keys.json");
    let keys = Arc::new(KeyFileProvider::open_or_create(&path).unwrap());
    let old = keys.current_id().await.unwrap();
    let s = store(&db).await;
    let v = vault_with(s.clone(), keys.clone()).await;
    let ann = user(&s, "ann@x.io", Role::Member).await;
    let mut chats_made: Vec<ChatId> = Vec::new();
    {
        let mut c = s.conn().await.unwrap();
        let bot = agents::create(&mut c, &ann.user_id, &name("bot"), "")
            .await
            .unwrap();
        for _ in 0..2 {
            chats_made.push(
                chats::create(&mut c, &ann.user_id, &bot.id)
                    .await
                    .unwrap()
                    .id,
            );
        }
    }
    for chat in &chats_made {
        let id = chat.to_string();
        for seq in 1..=TURNS {
            let text = format!("{id} turn {seq}");
            let sealed = v
                .seal_record(&binding(&ann.user_id, &id, seq), text.as_bytes())
                .await
                .unwrap();
            let mut c = s.conn().await.unwrap();
            chats::insert_turn(&mut c, chat, seq, &sealed, Default::default())
                .await
                .unwrap();
        }
    }
    assert_eq!(
        v.kek_usage().await.unwrap(),
        vec![KekUsage {
            kek_id: old.clone(),
            secrets: 0,
            records: 2 * TURNS,
        }],
        "the turns count as wrapped by the key they were sealed under"
    );

    let new = keys.add_key().unwrap();
    let report = v.rotate_in_batches(3).await.unwrap();
    assert_eq!(
        (report.rewrapped, report.remaining, report.unreadable.len()),
        (2 * TURNS as u64, 0, 0),
        "{report:?}"
    );
    assert_eq!(
        v.kek_usage().await.unwrap(),
        vec![KekUsage {
            kek_id: new.clone(),
            secrets: 0,
            records: 2 * TURNS,
        }]
    );
    keys.remove_key(&old).unwrap();
    let restarted = vault_with(
        s.clone(),
        Arc::new(KeyFileProvider::open_or_create(&path).unwrap()),
    )
    .await;
    for vault in [&v, &restarted] {
        for chat in &chats_made {
            let id = chat.to_string();
            let mut c = s.conn().await.unwrap();
            let turns = chats::turns(&mut c, chat).await.unwrap();
            assert_eq!(turns.len(), TURNS as usize);
            for t in turns {
                assert_eq!(t.sealed.kek_id, new);
                let plain = vault
                    .open_record(&binding(&ann.user_id, &id, t.seq), &t.sealed)
                    .await
                    .unwrap();
                assert_eq!(plain.expose(), format!("{id} turn {}", t.seq).as_bytes());
            }
        }
    }
}
