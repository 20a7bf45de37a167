//! Session and task records.

use super::*;

impl Store {
    /// Open a session: record it (keeping its creation time), store `config` if
    /// given (else keep the stored one), and make it live again (not invalidated).
    /// Returns `None` without writing if it is not stored and `must_exist`; else
    /// whether it existed, and whether a `finish` event was pending for it (cleared).
    pub async fn open_session(
        &self,
        id: &str,
        config: Option<&SessionConfig>,
        must_exist: bool,
        now: f64,
    ) -> Result<Option<(bool, bool)>, TaskError> {
        let (tx, store, existing) = self.session_for_update(id).await?;
        if existing.is_none() && must_exist {
            Self::commit(tx, "read a session").await?;
            return Ok(None);
        }
        let old = |k: &str| existing.as_ref().map(|e| js::get(e, k));
        let pending = old("finishPending").and_then(|v| v.as_bool()) == Some(true);
        let created = old("createdAt").filter(|c| c.as_f64().is_some());
        let stored_config = old("config").filter(|c| c.is_object());
        let config = match (config, stored_config) {
            (Some(c), _) => js::to_js(c),
            (None, Some(c)) => c,
            (None, None) => js::to_js(&SessionConfig::default()),
        };
        let obj = js_sys::Object::new();
        let set = |k: &str, v: &JsValue| {
            let _ = js_sys::Reflect::set(&obj, &k.into(), v);
        };
        set("id", &id.into());
        set("createdAt", &created.unwrap_or_else(|| now.into()));
        set("config", &config);
        set("invalidated", &false.into());
        set("finishPending", &false.into());
        store
            .put(&obj, None)
            .map_err(|e| storage_err("store a session", e))?;
        Self::commit(tx, "store a session").await?;
        Ok(Some((existing.is_some(), pending)))
    }

    /// A read-write transaction over sessions, and session `id` as stored (if it is).
    pub(super) async fn session_for_update(
        &self,
        id: &str,
    ) -> Result<(idb::Transaction, idb::ObjectStore, Option<JsValue>), TaskError> {
        let tx = self.tx(&[SESSIONS], TransactionMode::ReadWrite)?;
        let store = tx
            .object_store(SESSIONS)
            .map_err(|e| storage_err("open sessions", e))?;
        let existing = store
            .get(Query::from(JsValue::from_str(id)))
            .map_err(|e| storage_err("read a session", e))?
            .await
            .map_err(|e| storage_err("read a session", e))?;
        Ok((tx, store, existing))
    }

    /// Set `key` (`invalidated`, `finishPending`) of a stored session to `value`.
    pub async fn set_session_flag(
        &self,
        id: &str,
        key: &str,
        value: bool,
    ) -> Result<(), TaskError> {
        let (tx, store, existing) = self.session_for_update(id).await?;
        let Some(obj) = existing.filter(|e| e.is_object()) else {
            return Self::commit(tx, "read a session").await;
        };
        let _ = js_sys::Reflect::set(&obj, &key.into(), &value.into());
        store
            .put(&obj, None)
            .map_err(|e| storage_err("store a session", e))?;
        Self::commit(tx, "store a session").await
    }

    /// Delete a session's record (its tasks are deleted on their own).
    pub async fn delete_session(&self, id: &str) -> Result<(), TaskError> {
        let tx = self.tx(&[SESSIONS], TransactionMode::ReadWrite)?;
        let store = tx
            .object_store(SESSIONS)
            .map_err(|e| storage_err("open sessions", e))?;
        store
            .delete(Query::from(JsValue::from_str(id)))
            .map_err(|e| storage_err("delete a session", e))?;
        Self::commit(tx, "delete a session").await
    }

    /// Every stored session with its configuration (the default where the stored one
    /// cannot be read).
    pub async fn load_sessions(&self) -> Result<Vec<StoredSession>, TaskError> {
        let tx = self.tx(&[SESSIONS], TransactionMode::ReadOnly)?;
        let store = tx
            .object_store(SESSIONS)
            .map_err(|e| storage_err("open sessions", e))?;
        let all = store
            .get_all(None, None)
            .map_err(|e| storage_err("read sessions", e))?
            .await
            .map_err(|e| storage_err("read sessions", e))?;
        Ok(Self::sessions_from(all))
    }

    /// Every session and every task record, read in one transaction (one round trip
    /// at start-up, where every millisecond delays the first resumed request).
    #[allow(clippy::type_complexity)]
    pub async fn load_all(
        &self,
    ) -> Result<(Vec<StoredSession>, Vec<Result<TaskRecord, Unreadable>>), TaskError> {
        let tx = self.tx(&[SESSIONS, TASKS], TransactionMode::ReadOnly)?;
        let read = |name: &str| {
            tx.object_store(name)
                .and_then(|s| s.get_all(None, None))
                .map_err(|e| storage_err("read sessions and tasks", e))
        };
        let (sessions, tasks) = (read(SESSIONS)?, read(TASKS)?);
        let sessions = sessions
            .await
            .map_err(|e| storage_err("read sessions", e))?;
        let tasks = tasks.await.map_err(|e| storage_err("read tasks", e))?;
        Ok((Self::sessions_from(sessions), Self::tasks_from(tasks)))
    }

    pub(super) fn sessions_from(all: Vec<JsValue>) -> Vec<StoredSession> {
        all.into_iter()
            .filter_map(|v| {
                let id = js::get(&v, "id").as_string()?;
                let config = crate::from_js::from_value(js::get(&v, "config")).unwrap_or_default();
                let invalidated = js::get(&v, "invalidated").as_bool() == Some(true);
                Some(StoredSession {
                    id,
                    config,
                    invalidated,
                })
            })
            .collect()
    }

    /// Task records as read; one that cannot be read is an [`Unreadable`], so one
    /// corrupt record never hides the others.
    pub(super) fn tasks_from(all: Vec<JsValue>) -> Vec<Result<TaskRecord, Unreadable>> {
        all.into_iter()
            .map(|v| {
                crate::from_js::from_value::<TaskRecord>(v.clone()).map_err(|e| Unreadable {
                    id: js::get(&v, "id").as_string(),
                    session: js::get(&v, "session").as_string(),
                    url: js::get(&js::get(&v, "url"), "href").as_string(),
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    /// Write records, in order, in one transaction (a record that comes twice ends as
    /// it was last). The transaction is created now; the future tells its end.
    pub fn put_tasks(
        &self,
        recs: &[TaskRecord],
    ) -> Result<impl Future<Output = Result<(), TaskError>>, TaskError> {
        let tx = self.tx(&[TASKS], TransactionMode::ReadWrite)?;
        let store = tx
            .object_store(TASKS)
            .map_err(|e| storage_err("open tasks", e))?;
        for rec in recs {
            store
                .put(&js::to_js(rec), None)
                .map_err(|e| storage_err("store a task", e))?;
        }
        Ok(Self::commit(tx, "store a task"))
    }

    /// One task record, if stored and readable.
    pub async fn task(&self, id: &TaskId) -> Result<Option<TaskRecord>, TaskError> {
        let tx = self.tx(&[TASKS], TransactionMode::ReadOnly)?;
        let store = tx
            .object_store(TASKS)
            .map_err(|e| storage_err("open tasks", e))?;
        let v = store
            .get(Query::from(JsValue::from_str(&id.0)))
            .map_err(|e| storage_err("read a task", e))?
            .await
            .map_err(|e| storage_err("read a task", e))?;
        Ok(v.and_then(|v| crate::from_js::from_value(v).ok()))
    }

    /// Delete a task's record and bytes.
    pub fn forget(
        &self,
        id: &TaskId,
    ) -> Result<impl Future<Output = Result<(), TaskError>>, TaskError> {
        let (tx, tasks, chunks) = self.write_tx()?;
        let doomed = self.drop_range(&chunks, id, 0)?;
        tasks
            .delete(Query::from(JsValue::from_str(&id.0)))
            .map_err(|e| storage_err("delete a task", e))?;
        Ok(self.then_remove(Self::commit(tx, "delete a task"), doomed))
    }
}
