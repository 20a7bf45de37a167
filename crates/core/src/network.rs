//! What pages report about the network, and what a session's network policy makes
//! of it (URLSession's `isDiscretionary`, `allowsExpensiveNetworkAccess`,
//! `allowsConstrainedNetworkAccess`), best effort.
//!
//! Service workers cannot be trusted to know (Chromium gives them no `online` events),
//! so each page forwards what its `navigator.connection` (the Network Information
//! API) says when it opens a session and whenever it changes. Where the API is
//! missing (Firefox, Safari) a page reports nothing known, which counts as a good
//! network: longhaul cannot tell, and a discretionary task must not wait forever.
//!
//! - expensive: `type` is `cellular` (the web has no "metered" flag);
//! - constrained: the user asked to save data (`saveData`);
//! - good (for discretionary tasks): neither, and `effectiveType` is not `2g` or
//!   `slow-2g`. With no report at all yet, a discretionary task waits.

use serde::Deserialize;

/// A page's report of `navigator.connection`; `None` fields are unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkReport {
    /// `navigator.connection.saveData`.
    #[serde(default)]
    pub save_data: Option<bool>,
    /// `navigator.connection.type` (`wifi`, `cellular`, `ethernet`…).
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// `navigator.connection.effectiveType` (`slow-2g`, `2g`, `3g`, `4g`).
    #[serde(default)]
    pub effective_type: Option<String>,
}

impl NetworkReport {
    /// Cellular: expensive for the user.
    pub fn expensive(&self) -> bool {
        self.kind.as_deref() == Some("cellular")
    }

    /// The user asked to save data.
    pub fn constrained(&self) -> bool {
        self.save_data == Some(true)
    }

    /// Slower than 3G.
    pub fn slow(&self) -> bool {
        matches!(self.effective_type.as_deref(), Some("2g" | "slow-2g"))
    }

    /// Good enough for discretionary work.
    pub fn good(&self) -> bool {
        !self.expensive() && !self.constrained() && !self.slow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(save: Option<bool>, kind: Option<&str>, eff: Option<&str>) -> NetworkReport {
        NetworkReport {
            save_data: save,
            kind: kind.map(Into::into),
            effective_type: eff.map(Into::into),
        }
    }

    #[test]
    fn classification() {
        assert!(r(None, None, None).good(), "unknown counts as good");
        assert!(r(Some(false), Some("wifi"), Some("4g")).good());
        assert!(!r(None, Some("cellular"), Some("4g")).good());
        assert!(r(None, Some("cellular"), None).expensive());
        assert!(!r(Some(true), Some("wifi"), None).good());
        assert!(r(Some(true), None, None).constrained());
        assert!(!r(None, Some("wifi"), Some("2g")).good());
        assert!(!r(None, None, Some("slow-2g")).good());
        assert!(r(None, None, Some("3g")).good());
    }
}
