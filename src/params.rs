pub use crate::proto::binary::ValueRef;
use crate::proto::temporal::{Date, DateTime, Time};
use crate::value::Value;

/// A Rust value usable as a statement parameter.
pub trait ToValue {
    /// The value in its wire form, borrowing `self`.
    fn to_value(&self) -> ValueRef<'_>;
}

macro_rules! to_value {
    ($($t:ty => |$v:ident| $e:expr),* $(,)?) => {$(
        impl ToValue for $t {
            #[inline]
            fn to_value(&self) -> ValueRef<'_> {
                let $v = self;
                $e
            }
        }
    )*};
}

to_value!(
    i8 => |v| ValueRef::Int(i64::from(*v)),
    i16 => |v| ValueRef::Int(i64::from(*v)),
    i32 => |v| ValueRef::Int(i64::from(*v)),
    i64 => |v| ValueRef::Int(*v),
    isize => |v| ValueRef::Int(*v as i64),
    u8 => |v| ValueRef::UInt(u64::from(*v)),
    u16 => |v| ValueRef::UInt(u64::from(*v)),
    u32 => |v| ValueRef::UInt(u64::from(*v)),
    u64 => |v| ValueRef::UInt(*v),
    usize => |v| ValueRef::UInt(*v as u64),
    f32 => |v| ValueRef::Float(*v),
    f64 => |v| ValueRef::Double(*v),
    bool => |v| ValueRef::Int(i64::from(*v)),
    str => |v| ValueRef::Text(v),
    String => |v| ValueRef::Text(v),
    [u8] => |v| ValueRef::Bytes(v),
    Vec<u8> => |v| ValueRef::Bytes(v),
    bytes::Bytes => |v| ValueRef::Bytes(v),
    Date => |v| ValueRef::Date(*v),
    Time => |v| ValueRef::Time(*v),
    DateTime => |v| ValueRef::DateTime(*v),
    ValueRef<'_> => |v| *v,
);

impl<const N: usize> ToValue for [u8; N] {
    fn to_value(&self) -> ValueRef<'_> {
        ValueRef::Bytes(self)
    }
}

/// `Value::Bytes` goes as text when it is valid UTF-8 (as values read from
/// text columns are), and as binary data otherwise.
impl ToValue for Value {
    fn to_value(&self) -> ValueRef<'_> {
        match self {
            Value::Null => ValueRef::Null,
            Value::Int(n) => ValueRef::Int(*n),
            Value::UInt(n) => ValueRef::UInt(*n),
            Value::Float(x) => ValueRef::Float(*x),
            Value::Double(x) => ValueRef::Double(*x),
            Value::Bytes(b) => match std::str::from_utf8(b) {
                Ok(s) => ValueRef::Text(s),
                Err(_) => ValueRef::Bytes(b),
            },
            Value::Date(d) => ValueRef::Date(*d),
            Value::Time(t) => ValueRef::Time(*t),
            Value::DateTime(dt) => ValueRef::DateTime(*dt),
        }
    }
}

impl<T: ToValue> ToValue for Option<T> {
    #[inline]
    fn to_value(&self) -> ValueRef<'_> {
        match self {
            None => ValueRef::Null,
            Some(v) => v.to_value(),
        }
    }
}

impl<T: ToValue + ?Sized> ToValue for &T {
    #[inline]
    fn to_value(&self) -> ValueRef<'_> {
        (**self).to_value()
    }
}

impl<T: ToValue + ?Sized> ToValue for Box<T> {
    fn to_value(&self) -> ValueRef<'_> {
        (**self).to_value()
    }
}

/// The parameters of one execution: a tuple of up to 12 values, `()`, a
/// slice, array or `Vec` of values of one type (including `&dyn ToValue` and
/// [`Value`]), or [`params!`](macro@crate::params).
///
/// Statement parameters: [`ToValue`] for one value, [`Params`] for a list.
///
/// Parameters are borrowed while the command is encoded: nothing is copied
/// except into the connection's write buffer.
///
/// ```no_run
/// # async fn f(cnx: &mut mysql_uring::Connection) -> mysql_uring::Result<()> {
/// use mysql_uring::params;
/// // A tuple (up to 12 values), a slice or array of one type, or params![..] for mixed types.
/// cnx.exec_drop("INSERT INTO t (id, name, score) VALUES (?, ?, ?)", (1, "ada", Some(9.5))).await?;
/// cnx.exec_drop("DELETE FROM t WHERE id IN (?, ?)", [1, 2]).await?;
/// let name = String::from("bob");
/// cnx.exec_drop("INSERT INTO t (id, name, score) VALUES (?, ?, ?)", params![2, name, None::<f64>]).await?;
/// # Ok(()) }
/// ```
pub trait Params {
    /// How many parameters there are.
    fn len(&self) -> usize;
    /// The parameter at `i` (< `len()`).
    fn value(&self, i: usize) -> ValueRef<'_>;
    /// True for no parameters.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Params for () {
    fn len(&self) -> usize {
        0
    }
    fn value(&self, _: usize) -> ValueRef<'_> {
        ValueRef::Null
    }
}

impl<T: ToValue> Params for [T] {
    #[inline]
    fn len(&self) -> usize {
        <[T]>::len(self)
    }
    #[inline]
    fn value(&self, i: usize) -> ValueRef<'_> {
        self.get(i).map_or(ValueRef::Null, ToValue::to_value)
    }
}

impl<T: ToValue, const N: usize> Params for [T; N] {
    #[inline]
    fn len(&self) -> usize {
        N
    }
    #[inline]
    fn value(&self, i: usize) -> ValueRef<'_> {
        self[..].value(i)
    }
}

impl<T: ToValue> Params for Vec<T> {
    fn len(&self) -> usize {
        Vec::len(self)
    }
    fn value(&self, i: usize) -> ValueRef<'_> {
        self[..].value(i)
    }
}

impl<P: Params + ?Sized> Params for &P {
    #[inline]
    fn len(&self) -> usize {
        (**self).len()
    }
    #[inline]
    fn value(&self, i: usize) -> ValueRef<'_> {
        (**self).value(i)
    }
}

macro_rules! tuple_params {
    ($n:expr; $($i:tt $t:ident),+) => {
        impl<$($t: ToValue),+> Params for ($($t,)+) {
            #[inline]
            fn len(&self) -> usize {
                $n
            }
            #[inline]
            fn value(&self, i: usize) -> ValueRef<'_> {
                match i {
                    $($i => self.$i.to_value(),)+
                    _ => ValueRef::Null,
                }
            }
        }
    };
}

tuple_params!(1; 0 A);
tuple_params!(2; 0 A, 1 B);
tuple_params!(3; 0 A, 1 B, 2 C);
tuple_params!(4; 0 A, 1 B, 2 C, 3 D);
tuple_params!(5; 0 A, 1 B, 2 C, 3 D, 4 E);
tuple_params!(6; 0 A, 1 B, 2 C, 3 D, 4 E, 5 F);
tuple_params!(7; 0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G);
tuple_params!(8; 0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H);
tuple_params!(9; 0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I);
tuple_params!(10; 0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I, 9 J);
tuple_params!(11; 0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I, 9 J, 10 K);
tuple_params!(12; 0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I, 9 J, 10 K, 11 L);

/// Parameters of mixed types, as an array of `&dyn ToValue`.
///
/// ```
/// use mysql_uring::{params, Params};
/// let name = String::from("ada");
/// let p = params![1, name, None::<i32>, 2.5];
/// assert_eq!(p.len(), 4);
/// ```
#[macro_export]
macro_rules! params {
    () => { () };
    ($($v:expr),+ $(,)?) => {
        [$(&$v as &dyn $crate::ToValue),+]
    };
}

/// Named parameters for [`Connection::exec_named`](crate::Connection::exec_named):
/// `named_params! { "id" => 1, "name" => name }` is a slice of
/// `(&str, &dyn ToValue)` pairs.
#[macro_export]
macro_rules! named_params {
    () => { &[] as &[(&str, &dyn $crate::ToValue)] };
    ($($k:expr => $v:expr),+ $(,)?) => {
        &[$(($k, &$v as &dyn $crate::ToValue)),+] as &[(&str, &dyn $crate::ToValue)]
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_of_every_kind() {
        let s = String::from("x");
        let p = (
            1i8,
            2u64,
            -3.5f64,
            true,
            "a",
            s,
            &b"\x00"[..],
            None::<i32>,
            Some(7u16),
        );
        assert_eq!(p.len(), 9);
        assert_eq!(p.value(0), ValueRef::Int(1));
        assert_eq!(p.value(1), ValueRef::UInt(2));
        assert_eq!(p.value(2), ValueRef::Double(-3.5));
        assert_eq!(p.value(3), ValueRef::Int(1));
        assert_eq!(p.value(4), ValueRef::Text("a"));
        assert_eq!(p.value(5), ValueRef::Text("x"));
        assert_eq!(p.value(6), ValueRef::Bytes(b"\x00"));
        assert_eq!(p.value(7), ValueRef::Null);
        assert_eq!(p.value(8), ValueRef::UInt(7));
        let v = vec![Value::Int(1), Value::Bytes(vec![0xFF]), Value::Null];
        assert_eq!(v.value(1), ValueRef::Bytes(&[0xFF]));
        let m = crate::params![1, "two", 3.0f32];
        assert_eq!(m.value(1), ValueRef::Text("two"));
        assert_eq!(m.value(2), ValueRef::Float(3.0));
        assert_eq!([1, 2, 3].value(2), ValueRef::Int(3));
        assert_eq!(().len(), 0);
    }
}
