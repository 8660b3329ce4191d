//! `#[derive(FromRow)]` for [mysql-uring](https://docs.rs/mysql-uring): rows
//! into Rust structs. Use it through the library (`mysql_uring::FromRow`,
//! feature `derive`, on by default), which documents it.
//!
//! The generated impl reads each field from the column of the same name
//! (exact, case-sensitive, like `row.get("name")`), or from the column named
//! by `#[mysql(rename = "col")]`; a tuple struct reads its fields by position.
//! A struct with one lifetime parameter borrows from the row with it
//! (`&'a str`, `&'a [u8]` fields); without one, it works for rows of any
//! lifetime.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::quote;
use syn::ext::IdentExt;
use syn::{
    Data, DeriveInput, Fields, GenericParam, Lifetime, LifetimeParam, LitStr, parse_macro_input,
};

/// Implements `mysql_uring::FromRow` for a struct; see the library's docs.
#[proc_macro_derive(FromRow, attributes(mysql))]
pub fn derive_from_row(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// The impl for `input`, or the error to report at the offending tokens.
fn expand(input: &DeriveInput) -> syn::Result<TokenStream2> {
    let krate = quote!(::mysql_uring);
    for attr in &input.attrs {
        if attr.path().is_ident("mysql") {
            return Err(syn::Error::new_spanned(
                attr,
                "#[mysql(...)] goes on fields (`#[mysql(rename = \"column\")]`), not on the struct",
            ));
        }
    }
    let data = match &input.data {
        Data::Struct(s) => s,
        _ => {
            return Err(syn::Error::new(
                input.ident.span(),
                "#[derive(FromRow)] works on structs (fields by column name) and tuple structs \
                 (fields by position)",
            ));
        }
    };
    let name = &input.ident;
    let struct_name = name.unraw().to_string();

    // The row's lifetime: the struct's own lifetime parameter, which borrowed
    // fields use, or a fresh one when the struct borrows nothing.
    let mut lifetimes = input.generics.lifetimes();
    let own = lifetimes.next();
    if let Some(extra) = lifetimes.next() {
        return Err(syn::Error::new_spanned(
            extra,
            "#[derive(FromRow)] allows at most one lifetime parameter: the lifetime of the row \
             that borrowed fields (`&'a str`, `&'a [u8]`) borrow from",
        ));
    }
    let row_lt = match own {
        Some(l) => l.lifetime.clone(),
        None => Lifetime::new("'__mysql_row", Span::call_site()),
    };
    let mut impl_generics = input.generics.clone();
    if own.is_none() {
        impl_generics.params.insert(
            0,
            GenericParam::Lifetime(LifetimeParam::new(row_lt.clone())),
        );
    }
    // Type parameters: each field's type must be readable from a value.
    if input.generics.type_params().next().is_some() {
        let wc = impl_generics.make_where_clause();
        for f in &data.fields {
            let ty = &f.ty;
            wc.predicates
                .push(syn::parse_quote!(#ty: #krate::FromValue<#row_lt>));
        }
    }
    let (impl_g, _, where_clause) = impl_generics.split_for_impl();
    let (_, ty_g, _) = input.generics.split_for_impl();

    let row = quote!(__mysql_row);
    let body = match &data.fields {
        Fields::Named(fields) => {
            let mut inits = Vec::new();
            for f in &fields.named {
                let ident = f.ident.as_ref().expect("named field");
                let column = rename(f)?.unwrap_or_else(|| ident.unraw().to_string());
                let label = format!("{struct_name}::{}", ident.unraw());
                inits.push(quote! {
                    #ident: #krate::__private::by_name(#row, #column, #label)?
                });
            }
            quote!(Self { #(#inits,)* })
        }
        Fields::Unnamed(fields) => {
            let n = fields.unnamed.len();
            let mut values = Vec::new();
            for (i, f) in fields.unnamed.iter().enumerate() {
                if rename(f)?.is_some() {
                    return Err(syn::Error::new_spanned(
                        f,
                        "a tuple struct reads its fields by position: `rename` needs named fields",
                    ));
                }
                let label = format!("{struct_name}::{i}");
                values.push(quote! {
                    #krate::__private::by_position(#row, #i, #label)?
                });
            }
            quote! {{
                #krate::__private::check_len(#row, #n, #struct_name)?;
                Self(#(#values),*)
            }}
        }
        Fields::Unit => {
            return Err(syn::Error::new(
                name.span(),
                "#[derive(FromRow)] needs fields to read columns into",
            ));
        }
    };
    Ok(quote! {
        #[automatically_derived]
        impl #impl_g #krate::FromRow<#row_lt> for #name #ty_g #where_clause {
            #[inline]
            fn from_row(#row: &#krate::RowRef<#row_lt>) -> #krate::Result<Self> {
                ::core::result::Result::Ok(#body)
            }
        }
    })
}

/// The column named by the field's `#[mysql(rename = "...")]`, if any.
fn rename(field: &syn::Field) -> syn::Result<Option<String>> {
    let mut column = None;
    for attr in &field.attrs {
        if !attr.path().is_ident("mysql") {
            continue;
        }
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") {
                if column.is_some() {
                    return Err(meta.error("`rename` is given twice"));
                }
                let s: LitStr = meta.value()?.parse()?;
                column = Some(s.value());
                Ok(())
            } else {
                Err(meta.error("unknown mysql attribute; expected `rename = \"column\"`"))
            }
        })?;
    }
    Ok(column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(src: &str) -> String {
        let input: DeriveInput = syn::parse_str(src).expect("test input parses");
        expand(&input).expect_err("an error").to_string()
    }

    fn expansion_of(src: &str) -> String {
        let input: DeriveInput = syn::parse_str(src).expect("test input parses");
        expand(&input).expect("an impl").to_string()
    }

    #[test]
    fn fields_read_their_column_or_the_renamed_one() {
        let out = expansion_of(
            r#"struct Item { id: u64, #[mysql(rename = "unit_price")] price: f64, r#type: String }"#,
        );
        assert!(
            out.contains(r#"by_name (__mysql_row , "id" , "Item::id")"#),
            "{out}"
        );
        assert!(
            out.contains(r#"by_name (__mysql_row , "unit_price" , "Item::price")"#),
            "{out}"
        );
        assert!(
            out.contains(r#""type" , "Item::type""#),
            "raw identifiers: {out}"
        );
        assert!(out.contains("FromRow < '__mysql_row > for Item"), "{out}");
    }

    #[test]
    fn a_struct_lifetime_is_the_rows() {
        let out = expansion_of("struct Item<'a> { name: &'a str }");
        assert!(
            out.contains("impl < 'a > :: mysql_uring :: FromRow < 'a > for Item < 'a >"),
            "{out}"
        );
    }

    #[test]
    fn type_parameters_get_value_bounds() {
        let out = expansion_of("struct W<T> { v: T }");
        assert!(
            out.contains("T : :: mysql_uring :: FromValue < '__mysql_row >"),
            "{out}"
        );
    }

    #[test]
    fn tuple_structs_read_by_position_and_check_the_count() {
        let out = expansion_of("struct Pair(u64, String);");
        assert!(
            out.contains(r#"check_len (__mysql_row , 2usize , "Pair")"#),
            "{out}"
        );
        assert!(
            out.contains(r#"by_position (__mysql_row , 1usize , "Pair::1")"#),
            "{out}"
        );
    }

    #[test]
    fn misuse_is_explained() {
        assert!(error_of("enum E { A }").contains("works on structs"));
        assert!(error_of("struct U;").contains("needs fields"));
        assert!(
            error_of("struct Two<'a, 'b> { a: &'a str, b: &'b str }")
                .contains("at most one lifetime")
        );
        assert!(
            error_of(r#"struct S { #[mysql(renam = "x")] a: u8 }"#)
                .contains("unknown mysql attribute")
        );
        assert!(
            error_of(r#"struct S { #[mysql(rename = 5)] a: u8 }"#)
                .contains("expected string literal")
        );
        assert!(
            error_of(r#"struct S { #[mysql(rename = "x", rename = "y")] a: u8 }"#)
                .contains("given twice")
        );
        assert!(error_of(r#"struct S(#[mysql(rename = "x")] u8);"#).contains("by position"));
        assert!(
            error_of(r#"#[mysql(rename = "x")] struct S { a: u8 }"#).contains("goes on fields")
        );
    }
}
