//! Identifiers of requests and jobs: distinct types, so that a job id can
//! never be passed where a request id is meant. Both are opaque text in the
//! store and in JSON (`#[serde(transparent)]`).
use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_string())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

id_type!(
    /// A restore request: 12 hex characters, short enough to type.
    RequestId
);
id_type!(
    /// One run of a request: 32 hex characters; its first 8 name the job's
    /// databases (`<db>_pitr_<job8>`).
    JobId
);

impl RequestId {
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string()[..12].to_string())
    }
}

impl JobId {
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }

    /// The 8-character tag in the names of the job's databases.
    pub fn tag(&self) -> &str {
        self.0.get(..8).unwrap_or(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_have_their_lengths_and_a_job_tag_is_its_first_eight() {
        assert_eq!(RequestId::generate().as_str().len(), 12);
        let j = JobId::generate();
        assert_eq!(j.as_str().len(), 32);
        assert_eq!(j.tag(), &j.as_str()[..8]);
        assert_eq!(JobId::from("abc").tag(), "abc");
        assert_eq!(
            serde_json::to_string(&RequestId::from("r1")).unwrap(),
            "\"r1\""
        );
    }
}
