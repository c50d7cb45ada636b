//! `Patch<T>`: a JSON field that may be absent (keep), `null` (clear) or a value (set).

use serde::{Deserialize, Deserializer};

/// A field of an update body. Use with `#[serde(default)]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Patch<T> {
    #[default]
    Absent,
    Null,
    Value(T),
}

impl<T> Patch<T> {
    /// Applies the patch to an optional stored value.
    pub fn apply_to(self, current: Option<T>) -> Option<T> {
        match self {
            Patch::Absent => current,
            Patch::Null => None,
            Patch::Value(v) => Some(v),
        }
    }

    /// The value when one was given.
    pub fn value(&self) -> Option<&T> {
        match self {
            Patch::Value(v) => Some(v),
            _ => None,
        }
    }

    pub fn is_absent(&self) -> bool {
        matches!(self, Patch::Absent)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(d)? {
            Some(v) => Patch::Value(v),
            None => Patch::Null,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Body {
        #[serde(default)]
        a: Patch<String>,
    }

    #[test]
    fn absent_null_value() {
        let b: Body = serde_json::from_str("{}").unwrap();
        assert_eq!(b.a, Patch::Absent);
        let b: Body = serde_json::from_str(r#"{"a":null}"#).unwrap();
        assert_eq!(b.a, Patch::Null);
        let b: Body = serde_json::from_str(r#"{"a":"x"}"#).unwrap();
        assert_eq!(b.a.clone().apply_to(None), Some("x".to_string()));
        assert_eq!(Patch::<String>::Null.apply_to(Some("y".into())), None);
        assert_eq!(
            Patch::<String>::Absent.apply_to(Some("y".into())),
            Some("y".into())
        );
    }
}
