//! The page-side API: `BackgroundSession`.
//!
//! A session object is a remote control and a view: commands go to the service worker
//! as messages with a `MessagePort` for the reply; events come back on a
//! `BroadcastChannel` and are re-dispatched on the session as DOM `CustomEvent`s whose
//! `detail` is the task snapshot. Completed bytes are read straight from IndexedDB,
//! never copied through the worker.
//!
//! While the page knows of active tasks it pings the worker every [`PING_MS`]: each
//! ping is an event that extends the worker's life by a bounded amount, which is what
//! keeps transfers going in browsers that stop idle workers after 30 s.
//!
//! ## Files
//!
//! - this one: `BackgroundSession`, the API pages call;
//! - `messaging.rs`: commands posted to the worker and their answers;
//! - `watch.rs`: what a session adds to the page (the ping, network events), all
//!   removed at teardown; `options.rs`: pages' options read and checked;
//! - `types.rs`: the TypeScript declarations of the API.

use crate::core::validate::SessionId;
use crate::core::{ErrorCode, TaskError, TaskId};
use crate::js;
use crate::store::Store;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    BroadcastChannel, EventTarget, MessageChannel, MessageEvent, ServiceWorkerRegistration,
};

mod messaging;
mod options;
mod types;
mod watch;

use messaging::*;
use options::*;

/// How often an open page pings the worker while tasks are active.
pub const PING_MS: f64 = 20_000.0;
/// How long to wait for the worker to answer a command.
pub const REPLY_TIMEOUT_MS: f64 = 30_000.0;
/// How long `open` waits for a service worker registration to become active.
pub const READY_TIMEOUT_MS: f64 = 15_000.0;

type EventHandler = Closure<dyn FnMut(MessageEvent)>;
type NetworkHandler = Closure<dyn FnMut(web_sys::Event)>;
/// A running `setInterval`: its id and its callback.
type Interval = (JsValue, Closure<dyn FnMut()>);

struct Inner {
    id: SessionId,
    target: EventTarget,
    registration: ServiceWorkerRegistration,
    channel: BroadcastChannel,
    on_event: RefCell<Option<EventHandler>>,
    /// The window's `online`/`offline` listener, forwarding them to the worker.
    on_network: RefCell<Option<NetworkHandler>>,
    /// The `navigator.connection` `change` listener.
    on_connection: RefCell<Option<Closure<dyn FnMut()>>>,
    /// The ids of the session's tasks with work left: set by `open`, kept by the
    /// events. Not by the lists `tasks()` returns: they come on another channel than
    /// the events, so one may be older than an event already seen. A JS `Set`, so
    /// that `open` of a session of many tasks converts no id to a Rust string.
    active: RefCell<js_sys::Set>,
    ping: RefCell<Option<Interval>>,
}

/// A background session: open it by identifier, hand it downloads, watch its events.
#[wasm_bindgen]
pub struct BackgroundSession {
    inner: Rc<Inner>,
    is_new: bool,
}

fn err(e: TaskError) -> JsValue {
    js::error_to_js(&e)
}

#[wasm_bindgen]
impl BackgroundSession {
    /// Open the session `identifier` (creating it if new). Pages that open the same
    /// identifier share its tasks. Rejects with a `TypeError` for an empty or
    /// non-string identifier, before anything is stored.
    #[wasm_bindgen(unchecked_return_type = "BackgroundSession")]
    pub async fn open(
        #[wasm_bindgen(unchecked_param_type = "string")] identifier: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "SessionConfig")] config: Option<JsValue>,
        #[wasm_bindgen(unchecked_optional_param_type = "OpenOptions")] options: Option<JsValue>,
    ) -> Result<BackgroundSession, JsValue> {
        let must_exist = options
            .map(|o| js::get(&o, "mustExist"))
            .filter(|v| !v.is_undefined());
        if must_exist.as_ref().is_some_and(|v| v.as_bool().is_none()) {
            return Err(js::type_error("options.mustExist must be a boolean"));
        }
        let config = config.filter(|c| !c.is_undefined() && !c.is_null());
        if config.as_ref().is_some_and(|c| !c.is_object()) {
            return Err(js::type_error(
                "the session configuration must be an object",
            ));
        }
        let id = identifier
            .as_string()
            .ok_or_else(|| js::type_error("the session identifier must be a string"))?;
        let id = SessionId::parse(&id).map_err(|e| js::type_error(&e.message))?;
        let registration = ready_registration().await.map_err(err)?;
        let channel = BroadcastChannel::new(crate::core::protocol::CHANNEL)
            .map_err(|e| err(TaskError::new(ErrorCode::Internal, js::describe(&e))))?;
        let target = EventTarget::new()
            .map_err(|e| err(TaskError::new(ErrorCode::Internal, js::describe(&e))))?;
        let inner = Rc::new(Inner {
            id,
            target,
            registration,
            channel,
            on_event: RefCell::new(None),
            on_network: RefCell::new(None),
            on_connection: RefCell::new(None),
            active: RefCell::new(js_sys::Set::new(&JsValue::UNDEFINED)),
            ping: RefCell::new(None),
        });
        let weak = Rc::downgrade(&inner);
        let on_event = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
            let Some(inner) = weak.upgrade() else { return };
            let data = ev.data();
            if js::get(&data, "session").as_string().as_deref() != Some(inner.id.as_str()) {
                return;
            }
            let Some(kind) = js::get(&data, "type").as_string() else {
                return;
            };
            let snap = js::get(&data, "snapshot");
            inner.observe(&snap);
            let init = web_sys::CustomEventInit::new();
            init.set_detail(&snap);
            if let Ok(event) = web_sys::CustomEvent::new_with_event_init_dict(&kind, &init) {
                let _ = inner.target.dispatch_event(&event);
            }
        });
        inner
            .channel
            .set_onmessage(Some(on_event.as_ref().unchecked_ref()));
        *inner.on_event.borrow_mut() = Some(on_event);
        inner.forward_network_events();
        let config = config.map(|c| config_for_worker(&c)).transpose()?;
        let mut fields: Vec<(&str, JsValue)> = config.into_iter().map(|c| ("config", c)).collect();
        if let Some(m) = must_exist {
            fields.push(("mustExist", m));
        }
        let opened = inner.request("open", &fields).await.map_err(err)?;
        inner.report_connection().await;
        inner.set_active(&js::get(&opened, "active"));
        if js::get(&opened, "finishPending").as_bool() == Some(true) {
            // The session finished while no page was open: deliver `finish` once,
            // after the caller had a chance to add its listener.
            let target = inner.target.clone();
            let session = inner.id.as_str().to_owned();
            js::Timer::once(0.0, move || {
                let detail = js_sys::Object::new();
                let _ = js_sys::Reflect::set(&detail, &"session".into(), &session.into());
                let init = web_sys::CustomEventInit::new();
                init.set_detail(&detail);
                if let Ok(ev) = web_sys::CustomEvent::new_with_event_init_dict("finish", &init) {
                    let _ = target.dispatch_event(&ev);
                }
            })
            .forget();
        }
        let is_new = js::get(&opened, "isNew").as_bool() == Some(true);
        Ok(BackgroundSession { inner, is_new })
    }

    /// The identifiers of the stored sessions, except those invalidated by
    /// `finishTasksAndInvalidate` (read from IndexedDB; no worker needed).
    #[wasm_bindgen(unchecked_return_type = "string[]")]
    pub async fn identifiers() -> Result<JsValue, JsValue> {
        let store = Store::open().await.map_err(err)?;
        let out = js_sys::Array::new();
        for s in store.load_sessions().await.map_err(err)? {
            if !s.invalidated {
                out.push(&s.id.into());
            }
        }
        Ok(out.into())
    }

    /// Take no new task; the tasks go on to their end, then the session gets its
    /// `finish` event and is no longer listed by `identifiers()`. Opening it again
    /// makes it live again.
    #[wasm_bindgen(js_name = finishTasksAndInvalidate)]
    pub async fn finish_tasks_and_invalidate(&self) -> Result<(), JsValue> {
        self.inner
            .request("invalidate", &[("cancel", false.into())])
            .await
            .map_err(err)?;
        Ok(())
    }

    /// Cancel every task, free every byte and forget the session.
    #[wasm_bindgen(js_name = invalidateAndCancel)]
    pub async fn invalidate_and_cancel(&self) -> Result<(), JsValue> {
        self.inner
            .request("invalidate", &[("cancel", true.into())])
            .await
            .map_err(err)?;
        self.inner.active.borrow().clear();
        self.inner.stop_ping();
        Ok(())
    }

    /// Whether this `open` created the session: it was not stored before. An app
    /// that knows it opened this identifier before is seeing a session whose storage
    /// vanished (site data cleared: the web's force-quit); `open(id, config, {
    /// mustExist: true })` refuses such a session with `not-found` instead.
    #[wasm_bindgen(getter, js_name = isNew)]
    pub fn is_new(&self) -> bool {
        self.is_new
    }

    /// The session's identifier.
    #[wasm_bindgen(getter)]
    pub fn identifier(&self) -> String {
        self.inner.id.as_str().to_owned()
    }

    /// Start downloading `url` (absolute, or relative to the page). Resolves with the
    /// new task's snapshot once the task is stored.
    #[wasm_bindgen(unchecked_return_type = "DownloadSnapshot")]
    pub async fn download(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | URL | ResumeData")] url: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "DownloadOptions")] options: Option<JsValue>,
    ) -> Result<JsValue, JsValue> {
        if url.is_object() && !js::get(&url, "longhaulResumeData").is_undefined() {
            // Resume data from `cancel(id, { produceResumeData: true })`: the worker
            // checks it against the bytes it kept.
            let snap = self
                .inner
                .request("download", &[("resumeData", url)])
                .await
                .map_err(err)?;
            self.inner.observe(&snap);
            return Ok(snap);
        }
        let absolute = absolute_url(&url)?;
        let options = options.unwrap_or(JsValue::UNDEFINED);
        let mut fields = vec![("url", JsValue::from(absolute))];
        if options.is_object() {
            task_options(&options, &mut fields)?;
            typed_options(
                &options,
                &mut fields,
                &[
                    ("maxBytes", "number"),
                    ("expectedBytes", "number"),
                    ("integrity", "string"),
                ],
            )?;
        } else if !options.is_undefined() && !options.is_null() {
            return Err(js::type_error("options must be an object"));
        }
        let snap = self.inner.request("download", &fields).await.map_err(err)?;
        self.inner.observe(&snap);
        Ok(snap)
    }

    /// Upload `body` (a `Blob`, `File`, `ArrayBuffer` or typed array) to `url`: a tus
    /// endpoint by default, or with `protocol: 'put' | 'post'` the resource itself.
    /// Its bytes are copied into longhaul's storage before the promise resolves, so
    /// the page may close at once; `quota` if they do not fit, with nothing left half
    /// stored.
    #[wasm_bindgen(unchecked_return_type = "UploadSnapshot")]
    pub async fn upload(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | URL")] url: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Blob | ArrayBuffer | ArrayBufferView")]
        body: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "UploadOptions")] options: Option<JsValue>,
    ) -> Result<JsValue, JsValue> {
        let absolute = absolute_url(&url)?;
        let blob = upload_blob(&body)?;
        let options = options.unwrap_or(JsValue::UNDEFINED);
        let mut fields = vec![
            ("url", JsValue::from(absolute)),
            ("body", blob.clone().into()),
        ];
        if options.is_object() {
            task_options(&options, &mut fields)?;
            typed_options(
                &options,
                &mut fields,
                &[
                    ("protocol", "string"),
                    ("contentType", "string"),
                    ("chunkSize", "number"),
                ],
            )?;
            let meta = js::get(&options, "metadata");
            if !meta.is_undefined() {
                fields.push(("metadata", metadata_pairs(&meta)?.into()));
            }
        } else if !options.is_undefined() && !options.is_null() {
            return Err(js::type_error("options must be an object"));
        }
        let given = |fields: &[(&str, JsValue)], k: &str| {
            fields.iter().any(|(f, v)| *f == k && !v.is_undefined())
        };
        if !given(&fields, "metadata") {
            // A File's name and type, as tus clients send them.
            let pairs = js_sys::Array::new();
            if let Some(name) = js::get(&body, "name").as_string() {
                pairs.push(&js_sys::Array::of2(&"filename".into(), &name.into()));
            }
            if !blob.type_().is_empty() {
                pairs.push(&js_sys::Array::of2(
                    &"filetype".into(),
                    &blob.type_().into(),
                ));
            }
            fields.push(("metadata", pairs.into()));
        }
        if !given(&fields, "contentType") && !blob.type_().is_empty() {
            fields.push(("contentType", blob.type_().into()));
        }
        // Copying into storage and checking the copy take time: allow 4 MiB/s on top
        // of the usual wait (both ran at 64-75 MiB/s here; slow phones run far below).
        let timeout = REPLY_TIMEOUT_MS + blob.size() / (4.0 * 1024.0 * 1024.0) * 1000.0;
        let snap = self
            .inner
            .request_within("upload", &fields, timeout)
            .await
            .map_err(err)?;
        self.inner.observe(&snap);
        Ok(snap)
    }

    /// Every task of the session, oldest first. (The worker sends them as JSON; see
    /// its `tasks` command.)
    #[wasm_bindgen(unchecked_return_type = "TaskSnapshot[]")]
    pub async fn tasks(&self) -> Result<JsValue, JsValue> {
        let list = self.inner.request("tasks", &[]).await.map_err(err)?;
        match list.as_string() {
            Some(json) => js_sys::JSON::parse(&json),
            None => Ok(list), // an older worker, mid-update, answers with the objects
        }
    }

    /// One task, or `null`.
    #[wasm_bindgen(unchecked_return_type = "TaskSnapshot | null")]
    pub async fn task(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
    ) -> Result<JsValue, JsValue> {
        let id = task_id(&id)?;
        self.inner
            .request("task", &[("id", id.0.into())])
            .await
            .map_err(err)
    }

    /// Pause a task; its stored bytes are kept. Resolves with the snapshot.
    #[wasm_bindgen(unchecked_return_type = "TaskSnapshot")]
    pub async fn pause(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
    ) -> Result<JsValue, JsValue> {
        self.task_command("pause", &id).await
    }

    /// Resume a paused or failed task from its committed offset.
    #[wasm_bindgen(unchecked_return_type = "TaskSnapshot")]
    pub async fn resume(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
    ) -> Result<JsValue, JsValue> {
        self.task_command("resume", &id).await
    }

    /// Cancel a task and free its bytes. Resolves `true`, or `false` if it was
    /// already canceled. With `{ produceResumeData: true }` (downloads), the bytes are
    /// kept and it resolves with resume data for `download(resumeData)`.
    #[wasm_bindgen(unchecked_return_type = "boolean | ResumeData")]
    pub async fn cancel(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "CancelOptions")] options: Option<JsValue>,
    ) -> Result<JsValue, JsValue> {
        let id = task_id(&id)?;
        let produce = options
            .map(|o| js::get(&o, "produceResumeData"))
            .filter(|v| !v.is_undefined());
        if produce.as_ref().is_some_and(|v| v.as_bool().is_none()) {
            return Err(js::type_error(
                "options.produceResumeData must be a boolean",
            ));
        }
        let mut fields = vec![("id", JsValue::from(id.0))];
        if let Some(p) = produce {
            fields.push(("produceResumeData", p));
        }
        self.inner.request("cancel", &fields).await.map_err(err)
    }

    /// Forget an ended (completed, failed or canceled) task and free its bytes.
    pub async fn remove(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
    ) -> Result<(), JsValue> {
        let id = task_id(&id)?;
        self.inner
            .request("remove", &[("id", id.0.clone().into())])
            .await
            .map_err(err)?;
        self.inner.active.borrow().delete(&JsValue::from_str(&id.0));
        Ok(())
    }

    /// The bytes of a completed download: a Blob composed of the stored chunks the
    /// worker lists, backed by IndexedDB's files where the browser stores Blobs, so
    /// nothing is read into memory until the Blob is read (and then as it is read).
    #[wasm_bindgen(unchecked_return_type = "Blob")]
    pub async fn blob(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
    ) -> Result<JsValue, JsValue> {
        let id = task_id(&id)?;
        let v = self
            .inner
            .request("blob", &[("id", id.0.into()), ("pieces", true.into())])
            .await
            .map_err(err)?;
        // The worker sends the stored pieces, composed here (see the store's docs,
        // "Why pages compose their Blobs"); a worker of an older version ignores
        // `pieces` and sends the Blob itself.
        match v.dyn_ref::<js_sys::Array>() {
            Some(pieces) => web_sys::Blob::new_with_blob_sequence(pieces).map(Into::into),
            None => Ok(v),
        }
    }

    /// Add a listener for `progress`, `statechange` or `complete`.
    #[wasm_bindgen(js_name = addEventListener)]
    pub fn add_event_listener(
        &self,
        #[wasm_bindgen(unchecked_param_type = "keyof SessionEventMap")] kind: &str,
        #[wasm_bindgen(unchecked_param_type = "(event: CustomEvent<TaskSnapshot>) => void")]
        listener: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "boolean | AddEventListenerOptions")]
        options: Option<JsValue>,
    ) -> Result<(), JsValue> {
        self.call_target("addEventListener", kind, listener, options)
    }

    /// Remove a listener.
    #[wasm_bindgen(js_name = removeEventListener)]
    pub fn remove_event_listener(
        &self,
        #[wasm_bindgen(unchecked_param_type = "keyof SessionEventMap")] kind: &str,
        #[wasm_bindgen(unchecked_param_type = "(event: CustomEvent<TaskSnapshot>) => void")]
        listener: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "boolean | EventListenerOptions")]
        options: Option<JsValue>,
    ) -> Result<(), JsValue> {
        self.call_target("removeEventListener", kind, listener, options)
    }

    /// Dispatch an event on the session (as `EventTarget.dispatchEvent`).
    #[wasm_bindgen(js_name = dispatchEvent)]
    pub fn dispatch_event(&self, event: &web_sys::Event) -> Result<bool, JsValue> {
        self.inner.target.dispatch_event(event)
    }

    /// Stop listening and pinging; the session's tasks go on in the worker. A session
    /// that is dropped (collected, or freed with `free()` or `using`) without it, and
    /// an `open` that fails, do the same.
    pub fn close(&self) {
        self.inner.teardown();
    }
}

impl BackgroundSession {
    async fn task_command(&self, op: &str, id: &JsValue) -> Result<JsValue, JsValue> {
        let id = task_id(id)?;
        let snap = self
            .inner
            .request(op, &[("id", id.0.into())])
            .await
            .map_err(err)?;
        self.inner.observe(&snap);
        Ok(snap)
    }

    fn call_target(
        &self,
        method: &str,
        kind: &str,
        listener: JsValue,
        options: Option<JsValue>,
    ) -> Result<(), JsValue> {
        let f: js_sys::Function = js::get(&self.inner.target, method).dyn_into()?;
        f.call3(
            &self.inner.target,
            &kind.into(),
            &listener,
            &options.unwrap_or(JsValue::UNDEFINED),
        )?;
        Ok(())
    }
}
