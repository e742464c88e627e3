//! A per-instance cache of live sessions, so that a signed-in request usually needs no query.
//!
//! Staleness is bounded: an entry is served only while a poll of `session_revocations` that
//! *started* less than the bound ago has completed. Every change to an account's sessions or
//! account row records a revocation in the same transaction ([`super::Tx::sessions_changed`]);
//! the instance that made it drops the account's entries as soon as the transaction ends, the
//! others at their next poll. So a session ended at time `t` on any instance is honoured
//! nowhere after `t + bound`. Polls are made by requests (no background thread): any lookup
//! that finds the last poll older than a quarter of the bound starts one; a lookup that finds
//! it older than the bound goes to the database. With the database unreachable, no poll
//! completes and the cache serves nothing.
//!
//! A lookup that misses reads the database and caches the answer only if no eviction happened
//! while it read (a generation counter): an answer read just before a revocation committed is
//! then never stored after the eviction meant for it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::sessions::{Lifetimes, Session, TOUCH_AFTER_SECS};
use super::{AnyConnection, DbError, User, session_revocations};

/// How long after its `at` a revocation is still read by polls: longer than a transaction
/// lasts between recording it and committing, so none commits unseen.
const COMMIT_LAG_MS: i64 = 30_000;

/// Entries the cache holds at most; past it, answers are not cached until entries expire.
const CAPACITY: usize = 100_000;

pub struct SessionCache {
    bound: Duration,
    polling: AtomicBool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    entries: HashMap<Vec<u8>, Entry>,
    /// Bumped by every eviction: a miss caches its answer only under the generation it began in.
    generation: u64,
    /// When the latest completed poll started.
    polled_at: Option<Instant>,
    /// The database clock from which the next poll reads (`None` before the first poll).
    since_ms: Option<i64>,
    /// The revocations the last poll read, so that the next one applies only new ones.
    seen: HashSet<Vec<u8>>,
}

struct Entry {
    found: (Session, User),
    cached_at: Instant,
}

/// A claim on a poll ([`SessionCache::claim_poll`]).
pub struct PollClaim(Arc<SessionCache>);

impl PollClaim {
    pub fn cache(&self) -> &SessionCache {
        &self.0
    }
}

impl Drop for PollClaim {
    fn drop(&mut self) {
        self.0.polling.store(false, Ordering::Release);
    }
}

/// What the cache knows of a session.
pub enum Lookup {
    Hit(Box<(Session, User)>),
    /// Not cached: read the database, and cache the answer under this generation (`None`: the
    /// cache is not fresh, do not cache it).
    Miss(Option<u64>),
}

impl SessionCache {
    pub fn new(bound: Duration) -> SessionCache {
        SessionCache {
            bound,
            polling: AtomicBool::new(false),
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached session with this digest if it is live at `at` and the cache is fresh.
    /// Entries live at most a touch interval, so a session's recorded use is read again as
    /// often as it is written.
    pub fn lookup(&self, digest: &[u8], at: i64, lifetimes: Lifetimes) -> Lookup {
        let mut state = self.state();
        let fresh = state.polled_at.is_some_and(|p| p.elapsed() < self.bound);
        if !fresh {
            return Lookup::Miss(None);
        }
        let max_age = Duration::from_secs(TOUCH_AFTER_SECS.unsigned_abs());
        if let Some(entry) = state.entries.get(digest) {
            let (session, _) = &entry.found;
            if entry.cached_at.elapsed() < max_age && lifetimes.live(session, at) {
                return Lookup::Hit(Box::new(entry.found.clone()));
            }
            state.entries.remove(digest);
        }
        Lookup::Miss(Some(state.generation))
    }

    /// Caches `found`, read under `generation`, unless an eviction happened since.
    pub fn insert(&self, digest: Vec<u8>, found: &(Session, User), generation: u64) {
        let mut state = self.state();
        if state.generation != generation || state.entries.len() >= CAPACITY {
            return;
        }
        let entry = Entry {
            found: found.clone(),
            cached_at: Instant::now(),
        };
        state.entries.insert(digest, entry);
    }

    /// Drops the entries of accounts `users` and of sessions `sessions`.
    pub fn forget(&self, users: &[i32], sessions: &[Vec<u8>]) {
        if users.is_empty() && sessions.is_empty() {
            return;
        }
        let mut state = self.state();
        state.generation += 1;
        for digest in sessions {
            state.entries.remove(digest);
        }
        if !users.is_empty() {
            state
                .entries
                .retain(|_, entry| !users.contains(&entry.found.1.id));
        }
    }

    /// A claim on the next poll, when one is due and none is running: its holder runs
    /// [`Self::poll`]. The claim ends when it is dropped, whether the poll ran, failed or never
    /// got a connection.
    pub fn claim_poll(self: &Arc<Self>) -> Option<PollClaim> {
        let due = self
            .state()
            .polled_at
            .is_none_or(|p| p.elapsed() >= self.bound / 4);
        let claimed = due && !self.polling.swap(true, Ordering::AcqRel);
        claimed.then(|| PollClaim(Arc::clone(self)))
    }

    /// Reads the revocations recorded since the last poll and drops their accounts' entries.
    /// After a pause longer than an entry lives, it starts afresh: every entry is dropped and
    /// only the revocations of the last [`COMMIT_LAG_MS`] are read.
    pub fn poll(&self, conn: &mut AnyConnection) -> Result<(), DbError> {
        let started = Instant::now();
        let now_ms = session_revocations::clock_ms(conn)?;
        let max_age = Duration::from_secs(TOUCH_AFTER_SECS.unsigned_abs());
        let since_ms = {
            let mut state = self.state();
            let paused = state.polled_at.is_none_or(|p| p.elapsed() > max_age);
            if paused {
                state.entries.clear();
                state.generation += 1;
            }
            state
                .since_ms
                .filter(|_| !paused)
                .unwrap_or(now_ms - COMMIT_LAG_MS)
        };
        let recent = session_revocations::since(conn, since_ms)?;
        let mut state = self.state();
        let users: Vec<i32> = recent
            .iter()
            .filter(|(id, _)| !state.seen.contains(id))
            .map(|&(_, user_id)| user_id)
            .collect();
        state.seen = recent.into_iter().map(|(id, _)| id).collect();
        state.since_ms = Some(now_ms - COMMIT_LAG_MS);
        state.polled_at = Some(started);
        state.generation += 1;
        if !users.is_empty() {
            state
                .entries
                .retain(|_, entry| !users.contains(&entry.found.1.id));
        }
        if state.entries.len() >= CAPACITY / 2 {
            state
                .entries
                .retain(|_, entry| entry.cached_at.elapsed() < max_age);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;
    use crate::db::testing::*;
    use crate::db::{Access, Options, Tx, now};

    const LIFETIMES: Lifetimes = Lifetimes {
        idle: 3600,
        absolute: 86400,
    };

    /// Two instances on one database, each with its cache, and a session of `a@b.com`.
    fn two_instances() -> (Db, Db, crate::db::scratch::Scratch, Vec<u8>) {
        let scratch = crate::db::scratch::Scratch::new();
        let options = Options {
            access: Access::Shared,
            ..Options::default()
        };
        let a = Db::open(scratch.url(), &options).unwrap();
        let b = Db::open(scratch.url(), &options).unwrap();
        let digest = vec![1u8; 32];
        write(&a, |tx| {
            let user = crate::db::users::add_user(tx, "a@b.com", "h")?;
            session(tx, user.id, &digest);
            Ok(())
        });
        (a, b, scratch, digest)
    }

    fn cache(db: &Db) -> Arc<SessionCache> {
        db.sessions.clone().unwrap()
    }

    fn poll(db: &Db) {
        cache(db).poll(&mut conn(db)).unwrap();
    }

    /// Deletes the session behind the cache's back (no revocation recorded), so that only a
    /// cached answer can still find it.
    fn delete_unseen(db: &Db, digest: &[u8]) {
        use crate::db::schema::sessions;
        use diesel::prelude::*;
        write(db, |tx: &mut Tx<'_>| {
            Ok(diesel::delete(sessions::table.find(digest)).execute(&mut **tx)?)
        });
    }

    async fn live(db: &Db, digest: &[u8]) -> bool {
        let found = db.live_session(digest.to_vec(), now(), LIFETIMES).await;
        found.unwrap().is_some()
    }

    #[rocket::async_test]
    async fn a_session_is_cached_only_once_a_poll_made_the_cache_fresh() {
        let (a, _b, _scratch, digest) = two_instances();
        assert!(live(&a, &digest).await, "read from the database");
        assert!(
            cache(&a).state().entries.is_empty(),
            "not cached before a poll"
        );
        poll(&a);
        assert!(live(&a, &digest).await, "read again, now cached");
        delete_unseen(&a, &digest);
        assert!(live(&a, &digest).await, "served from the cache");
    }

    #[test]
    fn a_poll_claim_ends_when_dropped_whatever_became_of_the_poll() {
        let cache = Arc::new(SessionCache::new(Duration::from_secs(1)));
        let claim = cache.claim_poll().expect("due: never polled");
        assert!(cache.claim_poll().is_none(), "one poll at a time");
        drop(claim);
        assert!(cache.claim_poll().is_some(), "claimable again");
    }

    /// Every data function that ends a session or changes an account makes both instances drop
    /// what they cached of it: the one that made the change at once, the other at its poll.
    #[rocket::async_test]
    async fn every_change_to_a_session_or_an_account_reaches_both_caches() {
        use crate::db::{sessions as s, users as u};
        type Change = fn(&mut Tx<'_>, i32) -> Result<(), DbError>;
        let digest = [1u8; 32];
        let changes: [(&str, Change); 11] = [
            ("set_password_hash", |tx, id| {
                u::set_password_hash(tx, id, "new").map(drop)
            }),
            ("replace_password_hash", |tx, id| {
                u::replace_password_hash(tx, id, "h", "new").map(drop)
            }),
            ("mark_email_verified", |tx, id| {
                u::mark_email_verified(tx, id, 5).map(drop)
            }),
            ("change_email", |tx, id| {
                u::change_email(tx, id, "new@b.com", 5).map(drop)
            }),
            ("set_disabled", |tx, id| {
                u::set_disabled(tx, id, Some(5)).map(drop)
            }),
            ("advance_credential_version", u::advance_credential_version),
            ("delete_user", |tx, id| u::delete_user(tx, id).map(drop)),
            ("delete_sessions_of", |tx, id| {
                s::delete_sessions_of(tx, id, None, now(), LIFETIMES).map(drop)
            }),
            ("delete_session_by_public_id", |tx, id| {
                s::delete_session_by_public_id(tx, id, "s1", now(), LIFETIMES).map(drop)
            }),
            ("delete_session", |tx, _| {
                s::delete_session(tx, &[1u8; 32], now(), LIFETIMES).map(drop)
            }),
            ("touch_session (a minute on)", |tx, _| {
                s::touch_session(tx, &[1u8; 32], now() + 60)
            }),
        ];
        for (name, change) in changes {
            let (a, b, _scratch, _) = two_instances();
            let cached =
                |db: &Db| matches!(cache(db).lookup(&digest, now(), LIFETIMES), Lookup::Hit(_));
            for db in [&a, &b] {
                poll(db);
                assert!(live(db, &digest).await);
                assert!(cached(db), "{name}: cached");
            }
            let user = crate::db::users::find_user_by_email(&mut conn(&a), "a@b.com");
            let user_id = user.unwrap().unwrap().id;
            a.write_blocking(|tx| change(tx, user_id)).unwrap();
            assert!(!cached(&a), "{name}: dropped at once where it was made");
            if name.starts_with("touch") {
                continue; // only this instance's copy: the other's is read again within a minute
            }
            assert!(cached(&b), "{name}: the other instance has not polled yet");
            poll(&b);
            assert!(!cached(&b), "{name}: dropped by the other instance's poll");
        }
    }

    #[test]
    fn writes_that_change_nothing_record_no_revocation() {
        use crate::db::schema::session_revocations as revocations;
        use diesel::prelude::*;
        let (db, _dir, user) = db_with_user();
        let digest = [1u8; 32];
        write(&db, |tx| {
            session(tx, user.id, &digest);
            crate::db::users::replace_password_hash(tx, user.id, "h", "h")?;
            crate::db::sessions::touch_session(tx, &digest, now())?;
            crate::db::users::lock_account(tx, user.id).map(drop)
        });
        let recorded: i64 = revocations::table
            .count()
            .get_result(&mut **conn(&db))
            .unwrap();
        assert_eq!(recorded, 0);
    }

    #[rocket::async_test]
    async fn nothing_is_served_from_a_cache_whose_last_poll_is_older_than_the_bound() {
        let (a, _b, _scratch, digest) = two_instances();
        poll(&a);
        assert!(live(&a, &digest).await);
        delete_unseen(&a, &digest);
        assert!(live(&a, &digest).await, "cached");
        cache(&a).state().polled_at = Some(Instant::now() - Duration::from_millis(1001));
        assert!(
            !live(&a, &digest).await,
            "past the bound: the database answers"
        );
    }

    #[rocket::async_test]
    async fn a_session_ended_on_another_instance_is_dropped_at_the_next_poll() {
        let (a, b, _scratch, digest) = two_instances();
        poll(&b);
        assert!(live(&b, &digest).await);
        let ended = a.write(move |tx| {
            let digest = vec![1u8; 32];
            crate::db::sessions::delete_session(tx, &digest, now(), LIFETIMES)
        });
        assert!(ended.await.unwrap().is_some());
        assert!(live(&b, &digest).await, "B has not polled yet");
        poll(&b);
        assert!(!live(&b, &digest).await, "B read the revocation");
    }

    #[rocket::async_test]
    async fn the_instance_that_changes_an_account_drops_its_entries_at_once() {
        let (a, _b, _scratch, digest) = two_instances();
        poll(&a);
        assert!(live(&a, &digest).await);
        let user_id = a
            .live_session(digest.clone(), now(), LIFETIMES)
            .await
            .unwrap()
            .unwrap()
            .1
            .id;
        a.write(move |tx| crate::db::users::mark_email_verified(tx, user_id, 5))
            .await
            .unwrap();
        let found = a.live_session(digest, now(), LIFETIMES).await.unwrap();
        assert_eq!(found.unwrap().1.email_verified_at, Some(5), "read anew");
    }

    #[rocket::async_test]
    async fn an_answer_read_before_an_eviction_is_not_cached_after_it() {
        let (a, _b, _scratch, digest) = two_instances();
        poll(&a);
        let cache = cache(&a);
        let Lookup::Miss(Some(generation)) = cache.lookup(&digest, now(), LIFETIMES) else {
            panic!("a fresh cache misses an unknown session");
        };
        let found = crate::db::sessions::find_session(&mut conn(&a), &digest, now(), LIFETIMES)
            .unwrap()
            .unwrap();
        cache.forget(&[found.1.id], &[]);
        cache.insert(digest.clone(), &found, generation);
        assert!(matches!(
            cache.lookup(&digest, now(), LIFETIMES),
            Lookup::Miss(Some(_))
        ));
    }

    #[rocket::async_test]
    async fn a_cached_session_past_its_lifetime_is_not_served() {
        let (a, _b, _scratch, digest) = two_instances();
        poll(&a);
        assert!(live(&a, &digest).await);
        assert!(matches!(
            cache(&a).lookup(&digest, now(), LIFETIMES),
            Lookup::Hit(_)
        ));
        let later = now() + LIFETIMES.idle;
        assert!(matches!(
            cache(&a).lookup(&digest, later, LIFETIMES),
            Lookup::Miss(Some(_))
        ));
    }

    #[rocket::async_test]
    async fn a_recorded_use_is_read_anew() {
        let (a, _b, _scratch, digest) = two_instances();
        poll(&a);
        assert!(live(&a, &digest).await);
        let at = now() + crate::db::sessions::TOUCH_AFTER_SECS;
        let key = digest.clone();
        a.write(move |tx| crate::db::sessions::touch_session(tx, &key, at))
            .await
            .unwrap();
        let found = a.live_session(digest, at, LIFETIMES).await.unwrap();
        assert_eq!(found.unwrap().0.last_seen_at, at);
    }
}
