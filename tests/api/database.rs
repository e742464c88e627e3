use rocket::http::Status;

use crate::helpers::TestApp;

/// The whole logged-in path, so both ways of opening the file are seen to work, and the test's
/// own connection (opened the same way) sees what the app stored.
fn a_profile_is_read(app: &TestApp) {
    assert_eq!(app.register("ann@example.com", "pw").status(), Status::Ok);
    let session = app.session_for("ann@example.com", "pw");
    assert_eq!(app.profile(Some(&session)).status(), Status::Ok);
    assert_eq!((app.db.user_count(), app.db.session_count()), (1, 1));
}

#[test]
fn by_default_the_database_is_kept_to_the_process_with_no_shared_memory_file() {
    let app = TestApp::new();
    a_profile_is_read(&app);
    if app.db.is_postgres() {
        return; // No file: what follows is SQLite's.
    }
    assert!(!app.db.has_shm_file());
}

#[test]
fn database_exclusive_false_opens_the_file_for_other_processes_too() {
    let app = TestApp::with(|figment| figment.merge(("database_exclusive", false)));
    a_profile_is_read(&app);
    if app.db.is_postgres() {
        return; // No file: what follows is SQLite's.
    }
    assert!(app.db.has_shm_file());
}
