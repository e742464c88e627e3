//! Fault injection against the real binary: the storage fails under a running server, and no
//! write it acknowledged may be lost. Each test ends with a SIGKILL, `PRAGMA integrity_check` and
//! a restart that logs every acknowledged account in.
//!
//! The file-size limit needs no privilege and runs in plain `cargo test`. A full disk and a
//! file system that goes read-only need root (they mount a tmpfs and an ext4 image on a loop
//! device); they are ignored by plain `cargo test` and run by `.ci/run` (which runs as root)
//! with `cargo test --test fault -- --ignored`.

mod mount;
mod scenario;
#[path = "../common/server.rs"]
mod server;

use scenario::{OWNER, owner, sign_up_burst};
use server::{Api, Limits, Server};

/// Bytes no file of the server may grow past: the migrated database and a few dozen signups'
/// worth of write-ahead log (the migrations alone write more than 256 KiB of it since the
/// second factors' tables).
const FILE_SIZE_LIMIT: u64 = 512 * 1024;

#[rocket::async_test]
async fn a_file_size_limit_refuses_writes_with_503_and_loses_no_acknowledged_signup() {
    let work = tempfile::tempdir().unwrap();
    let db = work.path().join("auth.db");
    let limits = Limits {
        file_size: Some(FILE_SIZE_LIMIT),
        ..Limits::default()
    };
    let server = Server::start(db.to_str().unwrap(), work.path(), limits);
    let api = Api::new(&server);
    let owner = owner(&api).await;

    let mut signups = sign_up_burst(&api, "burst", 300, 16).await;
    assert!(signups.refusal_id.is_some(), "the limit bites");
    let token = scenario::every_write_is_done_or_refused(&api, &server, &owner, &mut signups).await;

    server.lift_file_size_limit();
    let healed = api.register("healed@example.com", scenario::PASSWORD).await;
    assert_eq!(
        healed.status,
        reqwest::StatusCode::OK,
        "recovers without a restart: {healed:?}"
    );
    signups
        .acknowledged
        .extend([OWNER.to_owned(), "healed@example.com".to_owned()]);

    server.kill();
    scenario::every_acknowledged_write_survives_a_restart(
        &db,
        work.path(),
        &signups.acknowledged,
        &signups.refused,
        token,
    )
    .await;
}

#[rocket::async_test]
#[ignore = "needs root (mounts a tmpfs); see README"]
async fn a_full_disk_refuses_writes_with_503_and_recovers_when_space_comes_back() {
    let work = tempfile::tempdir().unwrap();
    let disk = mount::Mount::tmpfs(&work.path().join("disk"), "2m");
    let db = disk.path().join("auth.db");
    let server = Server::start(db.to_str().unwrap(), work.path(), Limits::default());
    let api = Api::new(&server);
    let owner = owner(&api).await;

    let filler = disk.fill();
    let mut signups = sign_up_burst(&api, "burst", 200, 16).await;
    assert!(signups.refusal_id.is_some(), "the disk fills");
    let token = scenario::every_write_is_done_or_refused(&api, &server, &owner, &mut signups).await;

    std::fs::remove_file(filler).unwrap();
    let healed = api.register("healed@example.com", scenario::PASSWORD).await;
    assert_eq!(
        healed.status,
        reqwest::StatusCode::OK,
        "recovers without a restart: {healed:?}"
    );
    signups
        .acknowledged
        .extend([OWNER.to_owned(), "healed@example.com".to_owned()]);

    server.kill();
    scenario::every_acknowledged_write_survives_a_restart(
        &db,
        work.path(),
        &signups.acknowledged,
        &signups.refused,
        token,
    )
    .await;
}

#[rocket::async_test]
#[ignore = "needs root (mounts an ext4 image on a loop device); see README"]
async fn a_file_system_gone_read_only_refuses_writes_with_503_and_keeps_serving_reads() {
    let work = tempfile::tempdir().unwrap();
    let image = work.path().join("disk.img");
    let mount_point = work.path().join("disk");
    let disk = mount::Mount::ext4_image(&image, &mount_point);
    let db = disk.path().join("auth.db");
    let server = Server::start(db.to_str().unwrap(), work.path(), Limits::default());
    let api = Api::new(&server);
    let owner = owner(&api).await;
    let mut signups = sign_up_burst(&api, "before", 20, 4).await;
    assert!(signups.refused.is_empty(), "{signups:?}");

    disk.fail_read_only();
    let ready = api.ready().await;
    assert_eq!(
        ready.status,
        reqwest::StatusCode::SERVICE_UNAVAILABLE,
        "{ready:?}"
    );
    assert!(server.log().contains("not ready: "), "{}", server.log());
    let mut during = sign_up_burst(&api, "during", 40, 8).await;
    let token = scenario::every_write_is_done_or_refused(&api, &server, &owner, &mut during).await;
    assert!(during.acknowledged.is_empty(), "{during:?}");
    assert_eq!(token, None, "a read-only file system stores nothing");
    signups.acknowledged.push(OWNER.to_owned());
    signups.refused = during.refused;

    server.kill();
    drop(disk);
    let disk = mount::Mount::ext4_image_again(&image, &mount_point);
    scenario::every_acknowledged_write_survives_a_restart(
        &db,
        work.path(),
        &signups.acknowledged,
        &signups.refused,
        token,
    )
    .await;
    drop(disk);
}
