//! Prices in a currency's minor units, never floating point.

/// An ISO 4217 currency with the facts needed to write amounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Currency {
    pub(crate) code: String,
    /// Digits after the decimal point (2 for EUR, 0 for JPY).
    pub(crate) decimals: u32,
    symbol: Option<&'static str>,
}

/// Currencies whose minor unit is not 1/100.
const ZERO_DECIMALS: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV",
    "XAF", "XOF", "XPF",
];
const THREE_DECIMALS: &[&str] = &["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];
const SYMBOLS: &[(&str, &str)] = &[
    ("USD", "$"),
    ("EUR", "€"),
    ("GBP", "£"),
    ("JPY", "¥"),
    ("CNY", "¥"),
    ("INR", "₹"),
    ("KRW", "₩"),
];

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
        let symbol = SYMBOLS.iter().find(|(c, _)| *c == code).map(|(_, s)| *s);
        Ok(Currency {
            code: code.to_string(),
            decimals,
            symbol,
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

    /// `€1,299.00`, `¥390`, or `1,299.00 CHF` when there is no common symbol.
    pub(crate) fn format(&self, m: Money) -> String {
        let scale = 10i64.pow(self.decimals);
        let whole = group_thousands(m.0 / scale);
        let number = if self.decimals == 0 {
            whole
        } else {
            format!(
                "{whole}.{:0width$}",
                m.0 % scale,
                width = self.decimals as usize
            )
        };
        match self.symbol {
            Some(s) => format!("{s}{number}"),
            None => format!("{number} {}", self.code),
        }
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

fn group_thousands(n: i64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
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
        assert_eq!(eur.format(Money(129_900)), "€1,299.00");
        let jpy = Currency::parse("JPY").unwrap();
        assert_eq!(jpy.format(jpy.amount("390").unwrap()), "¥390");
        assert!(jpy.amount("3.5").is_err());
        let chf = Currency::parse("CHF").unwrap();
        assert_eq!(chf.format(Money(505)), "5.05 CHF");
        assert_eq!(chf.plain(Money(505)), "5.05");
        assert!(Currency::parse("eur").is_err());
    }
}
