//! Session configuration, as pages give it to `BackgroundSession.open(id, config)`.
//!
//! Stored with the session and read back at every worker start-up. Unknown keys are
//! refused (a typo should not silently fall back to a default): the shell lists the
//! keys it was given and [`check_keys`] decides, since deserializers that read only
//! the known fields never see the others.

use super::error::TaskError;
use super::retry::RetryPolicy;
use super::validate::{HeaderList, SENSITIVE_HEADERS};
use serde::{Deserialize, Serialize};

/// Default stall timeout (`requestTimeout`), ms.
pub const DEFAULT_REQUEST_TIMEOUT: f64 = 60_000.0;

/// A session's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SessionConfig {
    /// How failed attempts are retried.
    pub retry: RetryPolicy,
    /// A request that receives nothing (no head, no byte) for this long is aborted and
    /// retried (timeoutIntervalForRequest), ms.
    pub request_timeout: f64,
    /// Most bytes the session's tasks may hold together (`byteBudget`): completed,
    /// failed and paused tasks count what they store, unfinished ones the larger of
    /// that and their declared size. A task that would cross it fails `over-budget`
    /// before storing the bytes that would. `None`: no budget beyond the browser's
    /// quota.
    pub byte_budget: Option<u64>,
    /// Requests of this session in flight to one host (`host:port`) at once
    /// (httpMaximumConnectionsPerHost); more wait with `connection-limit`.
    pub max_connections_per_host: u32,
    /// A task not finished this long after it was created fails with `timeout`
    /// (timeoutIntervalForResource), ms; paused tasks are not stopped by it.
    pub resource_timeout: f64,
    /// Headers sent with every request of the session (httpAdditionalHeaders); a
    /// task's own headers of the same name win.
    pub headers: HeaderList,
    /// Run only on a good network, as pages report it (isDiscretionary).
    pub discretionary: bool,
    /// May use an expensive (cellular) network (allowsExpensiveNetworkAccess).
    pub allows_expensive_network_access: bool,
    /// May use a constrained network, Save-Data (allowsConstrainedNetworkAccess).
    pub allows_constrained_network_access: bool,
    /// With the permission granted, a notification when a task ends while no page is
    /// open (sessionSendsLaunchEvents); clicking it focuses or opens the app.
    pub notifications: bool,
}

/// Default `maxConnectionsPerHost`.
pub const DEFAULT_CONNECTIONS_PER_HOST: u32 = 6;
/// Default `resourceTimeout`: 7 days, as URLSession's.
pub const DEFAULT_RESOURCE_TIMEOUT: f64 = 7.0 * 86_400_000.0;

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            retry: RetryPolicy::default(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            byte_budget: None,
            max_connections_per_host: DEFAULT_CONNECTIONS_PER_HOST,
            resource_timeout: DEFAULT_RESOURCE_TIMEOUT,
            headers: HeaderList::default(),
            discretionary: false,
            allows_expensive_network_access: true,
            allows_constrained_network_access: true,
            notifications: false,
        }
    }
}

/// The keys a session configuration may have.
pub const CONFIG_KEYS: &[&str] = &[
    "retry",
    "requestTimeout",
    "byteBudget",
    "maxConnectionsPerHost",
    "resourceTimeout",
    "headers",
    "discretionary",
    "allowsExpensiveNetworkAccess",
    "allowsConstrainedNetworkAccess",
    "notifications",
];
/// The keys of `config.retry`.
pub const RETRY_KEYS: &[&str] = &[
    "maxAttempts",
    "baseDelay",
    "maxDelay",
    "delays",
    "maxAge",
    "jitter",
];

/// Refuse any of `keys` that is not `allowed`, naming it and where (`what`).
pub fn check_keys(what: &str, keys: &[String], allowed: &[&str]) -> Result<(), TaskError> {
    match keys.iter().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(TaskError::invalid(format!(
            "unknown key \"{k}\" in {what}; known keys: {}",
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

impl SessionConfig {
    /// [`SessionConfig::validate`], then the configuration with its headers normalized
    /// as a task's are ([`HeaderList::parse`]: lower-case names, trimmed values), so
    /// that a task's header replaces the session's of the same name however either
    /// was spelled. What the worker stores and applies.
    pub fn validated(mut self) -> Result<SessionConfig, TaskError> {
        self.validate()?;
        self.headers = HeaderList::parse(self.headers.pairs().to_vec())?;
        Ok(self)
    }

    /// Check every field.
    pub fn validate(&self) -> Result<(), TaskError> {
        let t = self.request_timeout;
        if !t.is_finite() || !(100.0..=86_400_000.0).contains(&t) {
            return Err(TaskError::invalid(
                "requestTimeout must be a number of ms from 100 to 1 day",
            ));
        }
        if let Some(b) = self.byte_budget {
            if b == 0 || b > super::validate::MAX_SAFE_INTEGER {
                return Err(TaskError::invalid(
                    "byteBudget must be a positive integer number of bytes up to 2^53",
                ));
            }
        }
        if !(1..=64).contains(&self.max_connections_per_host) {
            return Err(TaskError::invalid(
                "maxConnectionsPerHost must be a whole number from 1 to 64",
            ));
        }
        let r = self.resource_timeout;
        if !r.is_finite() || !(1_000.0..=365.0 * 86_400_000.0).contains(&r) {
            return Err(TaskError::invalid(
                "resourceTimeout must be a number of ms from 1 s to 365 days",
            ));
        }
        let headers = HeaderList::parse(self.headers.pairs().to_vec())?;
        if headers
            .pairs()
            .iter()
            .any(|(n, _)| SENSITIVE_HEADERS.contains(&n.as_str()))
        {
            return Err(TaskError::invalid(
                "session headers are stored: pass Authorization per task, or from the worker's credentials hook",
            ));
        }
        self.retry.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_named() {
        let keys = |ks: &[&str]| ks.iter().map(|k| k.to_string()).collect::<Vec<_>>();
        assert!(check_keys("config", &keys(&["retry"]), CONFIG_KEYS).is_ok());
        let e = check_keys("config", &keys(&["retry", "retyr"]), CONFIG_KEYS).unwrap_err();
        assert!(e.message.contains("\"retyr\""), "{}", e.message);
        assert!(check_keys(
            "config.retry",
            &keys(&["maxAttempts", "jitter"]),
            RETRY_KEYS
        )
        .is_ok());
        assert!(check_keys("config.retry", &keys(&["attempts"]), RETRY_KEYS).is_err());
    }
}
