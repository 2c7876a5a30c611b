//! Prices in a currency's minor units, never floating point; written the
//! way the sale's language writes them (CLDR, through ICU4X).

use std::cell::RefCell;
use std::collections::HashMap;

use icu_experimental::dimension::currency::formatter::CurrencyFormatter;
use icu_experimental::dimension::currency::CurrencyCode;
use writeable::Writeable;

/// An ISO 4217 currency with the facts needed to write amounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Currency {
    pub(crate) code: String,
    /// Digits after the decimal point (2 for EUR, 0 for JPY).
    pub(crate) decimals: u32,
}

/// Currencies whose minor unit is not 1/100.
const ZERO_DECIMALS: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV",
    "XAF", "XOF", "XPF",
];
const THREE_DECIMALS: &[&str] = &["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];

/// Why a currency code or an amount is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum MoneyError {
    #[error("`{0}` is not a currency code")]
    NotACurrency(String),
    #[error("`{text}` has more decimals than {code} allows ({decimals})")]
    TooPrecise {
        text: String,
        code: String,
        decimals: u32,
    },
    #[error("`{0}` is too large")]
    TooLarge(String),
    #[error("`{0}` is not a price")]
    NotAPrice(String),
}

impl Currency {
    pub(crate) fn parse(code: &str) -> Result<Currency, MoneyError> {
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(MoneyError::NotACurrency(code.to_string()));
        }
        let decimals = if ZERO_DECIMALS.contains(&code) {
            0
        } else if THREE_DECIMALS.contains(&code) {
            3
        } else {
            2
        };
        Ok(Currency {
            code: code.to_string(),
            decimals,
        })
    }

    /// Reads decimal text (already checked to be digits with an optional point).
    pub(crate) fn amount(&self, text: &str) -> Result<Money, MoneyError> {
        let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
        let frac = frac.trim_end_matches('0');
        if frac.len() > self.decimals as usize {
            return Err(MoneyError::TooPrecise {
                text: text.to_string(),
                code: self.code.clone(),
                decimals: self.decimals,
            });
        }
        let scale = 10i64.pow(self.decimals);
        let whole: i64 = whole
            .parse()
            .ok()
            .filter(|w: &i64| w.checked_mul(scale).is_some())
            .ok_or_else(|| MoneyError::TooLarge(text.to_string()))?;
        let mut minor = 0i64;
        if !frac.is_empty() {
            let padded = format!("{frac:0<width$}", width = self.decimals as usize);
            minor = padded
                .parse()
                .map_err(|_| MoneyError::NotAPrice(text.to_string()))?;
        }
        Ok(Money(whole * scale + minor))
    }

    /// `m` as `language` (a BCP 47 tag) writes it, by CLDR: `$4.90` (en),
    /// `4,90 €` (de, a no-break space), `￥490` (ja), `¥4.90` (zh-CN),
    /// `CHF 5.05` (en). A tag ICU cannot read is written as English.
    pub(crate) fn format(&self, m: Money, language: &str) -> String {
        let Ok(amount) = self.plain(m).parse::<fixed_decimal::Decimal>() else {
            return format!("{} {}", self.plain(m), self.code);
        };
        let Ok(code) = tinystr::TinyAsciiStr::<3>::try_from_str(&self.code) else {
            return format!("{} {}", self.plain(m), self.code);
        };
        with_formatter(language, |f| {
            f.format_fixed_decimal(&amount, &CurrencyCode(code))
                .write_to_string()
                .into_owned()
        })
    }

    /// Machine-readable amount, e.g. for schema.org `price` (`1299.00`).
    pub(crate) fn plain(&self, m: Money) -> String {
        let scale = 10i64.pow(self.decimals);
        if self.decimals == 0 {
            m.0.to_string()
        } else {
            format!(
                "{}.{:0width$}",
                m.0 / scale,
                m.0 % scale,
                width = self.decimals as usize
            )
        }
    }
}

/// Runs `f` with `language`'s currency formatter, made once per thread:
/// the build renders on rayon's threads, and a per-thread cache needs no
/// lock on the hot path (one formatter per item page's two prices).
fn with_formatter<T>(language: &str, f: impl FnOnce(&CurrencyFormatter) -> T) -> T {
    thread_local! {
        static MADE: RefCell<HashMap<String, CurrencyFormatter>> = RefCell::new(HashMap::new());
    }
    MADE.with_borrow_mut(|made| {
        let formatter = made.entry(language.to_string()).or_insert_with(|| {
            let make = |l: icu_locale_core::Locale| {
                CurrencyFormatter::try_new(l.into(), Default::default())
            };
            language
                .parse()
                .ok()
                .and_then(|l| make(l).ok())
                .or_else(|| make(icu_locale_core::locale!("en")).ok())
                .expect("English currency data is compiled in")
        });
        f(formatter)
    })
}

/// An amount in minor units (cents for EUR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Money(pub i64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_exact() {
        let eur = Currency::parse("EUR").unwrap();
        assert_eq!(eur.amount("9.9").unwrap(), Money(990));
        assert_eq!(eur.amount("1299").unwrap(), Money(129_900));
        assert!(eur.amount("1.999").is_err());
        assert_eq!(eur.format(Money(129_900), "en"), "€1,299.00");
        let jpy = Currency::parse("JPY").unwrap();
        assert_eq!(jpy.format(jpy.amount("390").unwrap(), "en"), "¥390");
        assert!(jpy.amount("3.5").is_err());
        let chf = Currency::parse("CHF").unwrap();
        assert_eq!(chf.plain(Money(505)), "5.05");
        assert!(Currency::parse("eur").is_err());
    }

    /// Known CLDR outputs (what a browser's `Intl.NumberFormat` writes).
    #[test]
    fn prices_are_written_the_customers_way() {
        let fmt = |code: &str, text: &str, lang: &str| {
            let c = Currency::parse(code).unwrap();
            c.format(c.amount(text).unwrap(), lang)
        };
        assert_eq!(fmt("EUR", "4.90", "de"), "4,90\u{a0}€");
        // French: a no-break space before the sign, a narrow one in groups.
        assert_eq!(fmt("EUR", "4.90", "fr"), "4,90\u{a0}€");
        assert_eq!(fmt("EUR", "1234.5", "fr"), "1\u{202f}234,50\u{a0}€");
        assert_eq!(fmt("JPY", "490", "ja"), "￥490");
        assert_eq!(fmt("CNY", "4.9", "zh-CN"), "¥4.90");
        assert_eq!(fmt("USD", "4.90", "en"), "$4.90");
        assert_eq!(fmt("EUR", "1299", "es"), "1299,00\u{a0}€");
        // A tag nobody can read: English, not a failure.
        assert_eq!(fmt("USD", "4.90", "not a tag"), "$4.90");
    }
}
