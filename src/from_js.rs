//! Reading Rust values out of JavaScript ones: a serde [`Deserializer`] over a
//! [`JsValue`], for the records IndexedDB gives back and the values nested in the
//! commands pages send; and [`command`], which reads a command's own fields one by
//! one, naming the field that does not fit.
//!
//! Why not `serde-wasm-bindgen`'s: size, as measured (docs/decisions.md, "Reading JS
//! values: from_js, not serde-wasm-bindgen"); its messages name the type that did
//! not fit, never a float's digits.
//!
//! What maps to what:
//! - `undefined` and `null` are an absent `Option` (and unit);
//! - a number fits an integer only when it is whole and within 2^53 (what
//!   JavaScript holds exactly; unsigned ones from 0) and within the integer type's
//!   own range; a float takes any number;
//! - arrays are sequences and tuples;
//! - objects are structs, whose fields are read by name (a field that is
//!   `undefined` is absent: `#[serde(default)]` applies), or maps (own
//!   enumerable string keys);
//! - strings are strings, and the unit variants of enums.
//!
//! Enums with data, bytes and `char` are not used by longhaul's records and are
//! refused with an error, never guessed.

use std::fmt;
use std::rc::Rc;

use serde::de::{self, DeserializeOwned, Deserializer, IntoDeserializer, Unexpected, Visitor};
use wasm_bindgen::{JsCast, JsValue};

use crate::core::protocol::RawCommand;

/// Why a value could not be read: a message naming what was expected and found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// What `u` is, by its kind: never through `Unexpected`'s own `Display`, which
/// formats floats (see the module docs).
fn what(u: &Unexpected<'_>) -> String {
    match u {
        Unexpected::Bool(b) => format!("the boolean {b}"),
        Unexpected::Unsigned(n) => format!("the number {n}"),
        Unexpected::Signed(n) => format!("the number {n}"),
        Unexpected::Float(_) => "a number".into(),
        Unexpected::Char(_) | Unexpected::Str(_) => "a string".into(),
        Unexpected::Unit | Unexpected::Option => "null or undefined".into(),
        Unexpected::Seq => "an array".into(),
        Unexpected::Map => "an object".into(),
        Unexpected::Other(what) => (*what).into(),
        _ => "a value of another kind".into(),
    }
}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Error(format!("invalid type: {}, expected {exp}", what(&unexp)))
    }
    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Error(format!("invalid value: {}, expected {exp}", what(&unexp)))
    }
}

/// Read a `T` out of `v`.
pub fn from_value<T: DeserializeOwned>(v: JsValue) -> Result<T, Error> {
    T::deserialize(JsDeserializer(v))
}

/// Whether `v` is `undefined` or `null`. (`JsValue::is_null_or_undefined` would
/// import one more JS function; these two are imported anyway.)
fn absent(v: &JsValue) -> bool {
    v.is_undefined() || v.is_null()
}

/// The largest integer a JavaScript number holds exactly, 2^53.
const EXACT: f64 = 9_007_199_254_740_992.0;

struct JsDeserializer(JsValue);

impl JsDeserializer {
    fn unexpected(&self) -> Unexpected<'static> {
        let v = &self.0;
        if absent(v) {
            Unexpected::Unit
        } else if let Some(b) = v.as_bool() {
            Unexpected::Bool(b)
        } else if v.as_f64().is_some() {
            Unexpected::Float(0.0)
        } else if v.is_string() {
            Unexpected::Str("")
        } else if js_sys::Array::is_array(v) {
            Unexpected::Seq
        } else if v.is_object() {
            Unexpected::Map
        } else {
            Unexpected::Other("a JavaScript value of another type")
        }
    }

    fn fail<T>(&self, exp: &dyn de::Expected) -> Result<T, Error> {
        Err(de::Error::invalid_type(self.unexpected(), exp))
    }

    /// The value as a whole number within `min..=max`, if it is one.
    fn whole(&self, min: f64, max: f64) -> Option<f64> {
        self.0
            .as_f64()
            .filter(|n| n.fract() == 0.0 && *n >= min && *n <= max)
    }

    fn string<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0.as_string() {
            Some(s) => visitor.visit_string(s),
            None => self.fail(&visitor),
        }
    }

    fn unsigned<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.whole(0.0, EXACT) {
            Some(n) => visitor.visit_u64(n as u64),
            None => self.fail(&visitor),
        }
    }

    /// The value as an object (not an array), if it is one; else itself back.
    fn object(self) -> Result<js_sys::Object, Self> {
        if self.0.is_object() && !js_sys::Array::is_array(&self.0) {
            Ok(self.0.unchecked_into())
        } else {
            Err(self)
        }
    }

    fn signed<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.whole(-EXACT, EXACT) {
            Some(n) => visitor.visit_i64(n as i64),
            None => self.fail(&visitor),
        }
    }
}

macro_rules! forward {
    ($($method:ident => $helper:ident),* $(,)?) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.$helper(visitor)
        })*
    };
}

impl<'de> Deserializer<'de> for JsDeserializer {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let v = &self.0;
        if absent(v) {
            visitor.visit_unit()
        } else if let Some(b) = v.as_bool() {
            visitor.visit_bool(b)
        } else if let Some(n) = v.as_f64() {
            match self.whole(-EXACT, EXACT) {
                Some(i) if i >= 0.0 => visitor.visit_u64(i as u64),
                Some(i) => visitor.visit_i64(i as i64),
                None => visitor.visit_f64(n),
            }
        } else if v.is_string() {
            self.string(visitor)
        } else if js_sys::Array::is_array(v) {
            self.deserialize_seq(visitor)
        } else if v.is_object() {
            self.deserialize_map(visitor)
        } else {
            self.fail(&visitor)
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0.as_bool() {
            Some(b) => visitor.visit_bool(b),
            None => self.fail(&visitor),
        }
    }

    forward! {
        deserialize_u8 => unsigned, deserialize_u16 => unsigned,
        deserialize_u32 => unsigned, deserialize_u64 => unsigned,
        deserialize_i8 => signed, deserialize_i16 => signed,
        deserialize_i32 => signed, deserialize_i64 => signed,
        deserialize_str => string, deserialize_string => string,
        deserialize_identifier => string,
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0.as_f64() {
            Some(n) => visitor.visit_f64(n),
            None => self.fail(&visitor),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.fail(&visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.fail(&visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.fail(&visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if absent(&self.0) {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if absent(&self.0) {
            visitor.visit_unit()
        } else {
            self.fail(&visitor)
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if !js_sys::Array::is_array(&self.0) {
            return self.fail(&visitor);
        }
        let array: js_sys::Array = self.0.unchecked_into();
        visitor.visit_seq(Items {
            len: array.length(),
            array,
            next: 0,
        })
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let object = match self.object() {
            Ok(object) => object,
            Err(other) => return other.fail(&visitor),
        };
        let keys = Keys::Own(js_sys::Object::keys(&object), 0);
        visitor.visit_map(Fields::new(object, keys))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let object = match self.object() {
            Ok(object) => object,
            Err(other) => return other.fail(&visitor),
        };
        let keys = Keys::Named(fields, field_names(fields), 0);
        visitor.visit_map(Fields::new(object, keys))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        // Unit variants only: a string, read as its variant by serde's own.
        match self.0.as_string() {
            Some(s) => IntoDeserializer::<Error>::into_deserializer(s)
                .deserialize_enum(name, variants, visitor),
            None => self.fail(&visitor),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

/// The items of an array, in order.
struct Items {
    array: js_sys::Array,
    len: u32,
    next: u32,
}

impl<'de> de::SeqAccess<'de> for Items {
    type Error = Error;

    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        if self.next >= self.len {
            return Ok(None);
        }
        let v = self.array.get(self.next);
        self.next += 1;
        seed.deserialize(JsDeserializer(v)).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some((self.len - self.next) as usize)
    }
}

thread_local! {
    /// Each struct's field names made JS strings once, by the address of its
    /// `&'static` field list (a handful of structs): a worker starting with 10,000
    /// task records reads 24 fields of each.
    static NAMES: std::cell::RefCell<Vec<(usize, Rc<Vec<JsValue>>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// The field names of `fields` as JS strings, made once.
fn field_names(fields: &'static [&'static str]) -> Rc<Vec<JsValue>> {
    let key = fields.as_ptr() as usize;
    NAMES.with(|names| {
        let mut names = names.borrow_mut();
        if let Some((_, n)) = names.iter().find(|(k, _)| *k == key) {
            return n.clone();
        }
        let made = Rc::new(
            fields
                .iter()
                .map(|f| JsValue::from_str(f))
                .collect::<Vec<_>>(),
        );
        names.push((key, made.clone()));
        made
    })
}

/// The properties of an object to read: a struct's fields, or a map's own keys.
enum Keys {
    Named(&'static [&'static str], Rc<Vec<JsValue>>, usize),
    Own(js_sys::Array, u32),
}

/// A property's name, as its key deserializes.
enum Name {
    Field(&'static str),
    Own(String),
}

/// An object's properties named by `keys`, skipping those that are `undefined`.
struct Fields {
    object: js_sys::Object,
    keys: Keys,
    value: Option<JsValue>,
}

impl Fields {
    fn new(object: js_sys::Object, keys: Keys) -> Self {
        Fields {
            object,
            keys,
            value: None,
        }
    }
}

impl<'de> de::MapAccess<'de> for Fields {
    type Error = Error;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        loop {
            // The property's value, and its name: a field's, or the key as a string.
            let get = |key: &JsValue| {
                js_sys::Reflect::get(&self.object, key).unwrap_or(JsValue::UNDEFINED)
            };
            let (v, name) = match &mut self.keys {
                Keys::Named(fields, names, next) => {
                    let (Some(f), Some(key)) = (fields.get(*next), names.get(*next)) else {
                        return Ok(None);
                    };
                    *next += 1;
                    (get(key), Name::Field(f))
                }
                Keys::Own(keys, next) => {
                    if *next >= keys.length() {
                        return Ok(None);
                    }
                    let k = keys.get(*next);
                    *next += 1;
                    (get(&k), Name::Own(k.as_string().unwrap_or_default()))
                }
            };
            if v.is_undefined() {
                continue;
            }
            self.value = Some(v);
            let key = match name {
                Name::Field(f) => seed.deserialize(IntoDeserializer::<Error>::into_deserializer(f)),
                Name::Own(k) => seed.deserialize(IntoDeserializer::<Error>::into_deserializer(k)),
            };
            return key.map(Some);
        }
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let v = self.value.take().unwrap_or(JsValue::UNDEFINED);
        seed.deserialize(JsDeserializer(v))
    }
}

/// A page's command, read field by field, where what does not fit is named by its
/// field (`a malformed command: maxBytes: invalid type: a string, expected a
/// number`).
///
/// Hand-written rather than derived: serde's derived reader of a struct with 25
/// optional fields, inlined into the worker's command handler, was the largest
/// single piece of it, and its errors named no field. The nested values
/// (`config`, `resumeData`, `connection`) are read by [`from_value`], as the
/// store's records are; field names follow [`RawCommand`]'s docs.
pub fn command(v: &JsValue) -> Result<RawCommand, Error> {
    if !v.is_object() || js_sys::Array::is_array(v) {
        return Err(Error(format!(
            "invalid type: {}, expected a command object",
            kind(v)
        )));
    }
    let p = Props(v);
    Ok(RawCommand {
        longhaul: p.required("longhaul", "a whole number", |v| {
            v.as_f64()
                .filter(|n| n.fract() == 0.0 && *n >= 0.0 && *n <= f64::from(u32::MAX))
                .map(|n| n as u32)
        })?,
        op: p.required("op", "a string", JsValue::as_string)?,
        session: p.required("session", "a string", JsValue::as_string)?,
        id: p.string("id")?,
        url: p.string("url")?,
        headers: p.pairs("headers")?.unwrap_or_default(),
        description: p.string("description")?,
        max_bytes: p.number("maxBytes")?,
        config: p.value("config")?,
        online: p.boolean("online")?,
        integrity: p.string("integrity")?,
        sensitive_headers: p.read("sensitiveHeaders", "an array of strings", |v| {
            items(v, JsValue::as_string)
        })?,
        persist_credentials: p.boolean("persistCredentials")?,
        protocol: p.string("protocol")?,
        metadata: p.pairs("metadata")?,
        chunk_size: p.number("chunkSize")?,
        content_type: p.string("contentType")?,
        priority: p.number("priority")?,
        earliest_begin: p.number("earliestBegin")?,
        expected_bytes: p.number("expectedBytes")?,
        produce_resume_data: p.boolean("produceResumeData")?,
        resume_data: p.value("resumeData")?,
        cancel: p.boolean("cancel")?,
        connection: p.value("connection")?,
        must_exist: p.boolean("mustExist")?,
        pieces: p.boolean("pieces")?,
    })
}

/// What `v` is, by its kind (as serde's messages above name it).
fn kind(v: &JsValue) -> String {
    what(&JsDeserializer(v.clone()).unexpected())
}

/// The items of the array `v`, each read by `item`; `None` if `v` is no array or
/// an item does not fit.
fn items<T>(v: &JsValue, item: fn(&JsValue) -> Option<T>) -> Option<Vec<T>> {
    let array = v.dyn_ref::<js_sys::Array>()?;
    (0..array.length()).map(|i| item(&array.get(i))).collect()
}

/// The properties of a command object, each read by its name.
struct Props<'a>(&'a JsValue);

impl Props<'_> {
    /// The property `name`: `None` when it is `undefined` or `null`.
    fn get(&self, name: &str) -> Option<JsValue> {
        let v = js_sys::Reflect::get(self.0, &JsValue::from_str(name)).ok()?;
        (!absent(&v)).then_some(v)
    }

    /// The property `name` read by `read`, which gives `None` where it does not fit
    /// (`expected` says what would).
    fn read<T>(
        &self,
        name: &str,
        expected: &str,
        read: fn(&JsValue) -> Option<T>,
    ) -> Result<Option<T>, Error> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        match read(&v) {
            Some(t) => Ok(Some(t)),
            None => Err(Error(format!(
                "{name}: invalid type: {}, expected {expected}",
                kind(&v)
            ))),
        }
    }

    /// A property that must be there.
    fn required<T>(
        &self,
        name: &str,
        expected: &str,
        read: fn(&JsValue) -> Option<T>,
    ) -> Result<T, Error> {
        self.read(name, expected, read)?
            .ok_or_else(|| Error(format!("missing field `{name}`")))
    }

    fn string(&self, name: &str) -> Result<Option<String>, Error> {
        self.read(name, "a string", JsValue::as_string)
    }

    fn number(&self, name: &str) -> Result<Option<f64>, Error> {
        self.read(name, "a number", JsValue::as_f64)
    }

    fn boolean(&self, name: &str) -> Result<Option<bool>, Error> {
        self.read(name, "a boolean", JsValue::as_bool)
    }

    /// An array of `[string, string]` pairs.
    fn pairs(&self, name: &str) -> Result<Option<Vec<(String, String)>>, Error> {
        self.read(name, "an array of [string, string] pairs", |v| {
            items(v, |pair| {
                let pair = pair.dyn_ref::<js_sys::Array>()?;
                if pair.length() != 2 {
                    return None;
                }
                Some((pair.get(0).as_string()?, pair.get(1).as_string()?))
            })
        })
    }

    /// A nested value, read as the store's records are.
    fn value<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, Error> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => from_value(v)
                .map(Some)
                .map_err(|e| Error(format!("{name}: {e}"))),
        }
    }
}
