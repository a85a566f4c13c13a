//! Exact decimal quantities. Never floats.
//!
//! An [`Amount`] has at most [`AMOUNT_DECIMAL_PLACES_MAX`] decimal places,
//! as the reference stores `quant × 10^6`. Its text form is the canonical
//! shortest one (`14`, `0.01`, `-2.5`), never `14.000`.
//!
//! Encoding (pinned, part of the event format): an amount or a rate is
//! encoded as its normalised `(mantissa: i128, scale: u32)`; decoding rejects
//! non-normalised pairs, so every value has exactly one byte form.

use std::fmt;
use std::str::FromStr;

use bincode::de::Decoder;
use bincode::enc::Encoder;
use bincode::error::{DecodeError, EncodeError};
use bincode::{Decode, Encode};
use rust_decimal::{Decimal, RoundingStrategy};

/// Decimal places an amount may carry (the reference's `DECIMAL_PLACES`).
pub const AMOUNT_DECIMAL_PLACES_MAX: u32 = 6;
/// Longest amount text accepted by [`Amount::from_str`], in bytes; keeps
/// parsing bounded and far inside `Decimal`'s 28 significant digits.
pub const AMOUNT_TEXT_LENGTH_MAX_BYTES: usize = 26;

/// Largest magnitude, in whole units, of an entry's `quant`, of a limit
/// (`-min` and `max`) and of a fixed fee: 10^15 units, i.e. 10^21
/// micro-units (about 2^69.8). `decide` refuses anything larger, and the API
/// refuses it where the amount is parsed.
///
/// With it, no sequence of accepted events can overflow a figure the
/// projections keep:
/// - a completed balance moves only within its limits, so it stays within
///   ±10^15 units; a pending one too when `validate_pending` is on, and
///   `decide` keeps it within [`BALANCE_MAX_UNITS`] when it is off; both are
///   far inside what an [`Amount`] holds exactly (a 96-bit mantissa at six
///   decimals, about 7.9·10^22 units);
/// - the running totals (gross in, gross out, volume) are 128-bit
///   micro-units: a volume overflows only past 2^127 / (2 · 10^21) ≈ 8.5·10^16
///   maximal entries of one account, which is more than 3 EB of journal (an
///   entry takes at least 40 bytes) or 2,700 years at a million entries a
///   second;
/// - the sum of all balances: fewer than 2^32 accounts × 10^24 micro-units
///   is below 2^112.
pub const AMOUNT_MAX_UNITS: i64 = 1_000_000_000_000_000;

/// Largest magnitude, in whole units, of any balance after an accepted
/// write: 10^18 units (10^24 micro-units). Only a pending balance of a node
/// that does not check pending balances against limits can come near it.
pub const BALANCE_MAX_UNITS: i64 = 1_000_000_000_000_000_000;

/// Why an amount or rate was refused, or arithmetic failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AmountError {
    /// Text is not `-?digits(.digits)?`.
    #[error("amount {text:?} is not a plain decimal number")]
    Syntax {
        /// The refused text.
        text: String,
    },
    /// More than six decimal places.
    #[error("amount {text:?} has more than {AMOUNT_DECIMAL_PLACES_MAX} decimal places")]
    TooPrecise {
        /// The refused text.
        text: String,
    },
    /// The result does not fit.
    #[error("amount arithmetic overflowed")]
    Overflow,
    /// An exchange rate must be strictly positive.
    #[error("exchange rate {rate} is not positive")]
    RateNotPositive {
        /// The refused rate as text.
        rate: String,
    },
}

/// A signed exact quantity with at most six decimal places.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Amount(Decimal);

fn canonical(d: Decimal) -> Decimal {
    // `normalize` strips trailing zeros; zero is forced positive so `-0`
    // never appears in text or bytes.
    if d.is_zero() {
        Decimal::ZERO
    } else {
        d.normalize()
    }
}

impl Amount {
    /// Zero.
    pub const ZERO: Amount = Amount(Decimal::ZERO);

    /// Wraps a decimal, refusing more than six decimal places.
    pub fn from_decimal(d: Decimal) -> Result<Self, AmountError> {
        let d = canonical(d);
        if d.scale() > AMOUNT_DECIMAL_PLACES_MAX {
            return Err(AmountError::TooPrecise { text: d.to_string() });
        }
        Ok(Self(d))
    }

    /// A whole number of units.
    pub fn from_units(units: i64) -> Self {
        Self(Decimal::from(units))
    }

    /// A number of micro-units (10^-6).
    pub fn from_micros(micros: i64) -> Self {
        // Canonical form built directly: trailing zeros stripped with i64
        // arithmetic instead of `Decimal::normalize`'s 96-bit divisions.
        // Zero ends at scale 0 with a positive sign, as `canonical` makes it.
        let (mut mantissa, mut scale) = (micros, AMOUNT_DECIMAL_PLACES_MAX);
        while scale > 0 && mantissa % 10 == 0 {
            mantissa /= 10;
            scale -= 1;
        }
        Self(Decimal::new(mantissa, scale))
    }

    /// The underlying decimal.
    pub fn as_decimal(&self) -> Decimal {
        self.0
    }

    /// [`AMOUNT_MAX_UNITS`] as an amount.
    pub fn max_value() -> Amount {
        Amount::from_units(AMOUNT_MAX_UNITS)
    }

    /// True when `|self| ≤` [`AMOUNT_MAX_UNITS`]: the bound of a quant, a
    /// limit or a fee.
    pub fn within_max(&self) -> bool {
        self.0.abs() <= Decimal::from(AMOUNT_MAX_UNITS)
    }

    /// True when `|self| ≤` [`BALANCE_MAX_UNITS`]: the bound of a balance.
    pub fn within_balance_max(&self) -> bool {
        self.0.abs() <= Decimal::from(BALANCE_MAX_UNITS)
    }

    /// True when zero.
    pub fn is_zero(&self) -> bool {
        self.0.is_zero()
    }

    /// True when strictly negative.
    pub fn is_negative(&self) -> bool {
        self.0 < Decimal::ZERO
    }

    /// True when strictly positive.
    pub fn is_positive(&self) -> bool {
        self.0 > Decimal::ZERO
    }

    /// `self + rhs`, or `Overflow`.
    pub fn checked_add(self, rhs: Amount) -> Result<Amount, AmountError> {
        self.0.checked_add(rhs.0).map(|d| Amount(canonical(d))).ok_or(AmountError::Overflow)
    }

    /// `self - rhs`, or `Overflow`.
    pub fn checked_sub(self, rhs: Amount) -> Result<Amount, AmountError> {
        self.0.checked_sub(rhs.0).map(|d| Amount(canonical(d))).ok_or(AmountError::Overflow)
    }

    /// Going trunkward: `quant × rate`, half-even rounded to six places.
    pub fn to_trunkward(self, rate: Rate) -> Result<Amount, AmountError> {
        let product = self.0.checked_mul(rate.0).ok_or(AmountError::Overflow)?;
        Ok(Amount(canonical(round6(product))))
    }

    /// Coming back from trunkward: `quant ÷ rate`, half-even rounded to six
    /// places (the reference's `round($q / $rate, 6, PHP_ROUND_HALF_EVEN)`).
    pub fn from_trunkward(self, rate: Rate) -> Result<Amount, AmountError> {
        let quotient = self.0.checked_div(rate.0).ok_or(AmountError::Overflow)?;
        Ok(Amount(canonical(round6(quotient))))
    }
}

fn round6(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(AMOUNT_DECIMAL_PLACES_MAX, RoundingStrategy::MidpointNearestEven)
}

/// Checks `-?[0-9]+(\.[0-9]+)?` within the length bound; returns the count
/// of fraction digits.
fn check_syntax(text: &str) -> Result<usize, AmountError> {
    let syntax = || AmountError::Syntax { text: text.to_owned() };
    if text.len() > AMOUNT_TEXT_LENGTH_MAX_BYTES {
        return Err(syntax());
    }
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (unsigned, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !fraction.is_none_or(digits) {
        return Err(syntax());
    }
    Ok(fraction.map_or(0, str::len))
}

impl FromStr for Amount {
    type Err = AmountError;

    /// Parses `-?digits(.digits)?` with at most six fraction digits
    /// (trailing zeros count: `1.0000000` is refused, being ambiguous input).
    fn from_str(text: &str) -> Result<Self, AmountError> {
        let fraction_digits = check_syntax(text)?;
        if fraction_digits > 6 {
            return Err(AmountError::TooPrecise { text: text.to_owned() });
        }
        let d = Decimal::from_str_exact(text).map_err(|_| AmountError::Syntax { text: text.to_owned() })?;
        Amount::from_decimal(d)
    }
}

impl std::ops::Neg for Amount {
    type Output = Amount;

    /// Cannot overflow: `Decimal` is sign-magnitude.
    fn neg(self) -> Amount {
        Amount(canonical(-self.0))
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A strictly positive exchange rate with the trunkward node
/// (`node.ini conversion_rate`): trunkward quant = local quant × rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rate(Decimal);

impl Rate {
    /// One to one.
    pub const ONE: Rate = Rate(Decimal::ONE);

    /// Wraps a decimal, refusing zero and negatives.
    pub fn new(d: Decimal) -> Result<Self, AmountError> {
        if d <= Decimal::ZERO {
            return Err(AmountError::RateNotPositive { rate: d.to_string() });
        }
        Ok(Self(canonical(d)))
    }

    /// The underlying decimal.
    pub fn as_decimal(&self) -> Decimal {
        self.0
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

fn encode_decimal<E: Encoder>(d: Decimal, encoder: &mut E) -> Result<(), EncodeError> {
    d.mantissa().encode(encoder)?;
    d.scale().encode(encoder)
}

fn decode_decimal<Context, D: Decoder<Context = Context>>(decoder: &mut D) -> Result<Decimal, DecodeError> {
    let mantissa = i128::decode(decoder)?;
    let scale = u32::decode(decoder)?;
    let d = Decimal::try_from_i128_with_scale(mantissa, scale)
        .map_err(|e| DecodeError::OtherString(format!("decimal out of range: {e}")))?;
    if !is_canonical(mantissa, scale) {
        return Err(DecodeError::OtherString(format!("decimal {d} is not in canonical form")));
    }
    Ok(d)
}

/// Whether `mantissa × 10^-scale` is what [`canonical`] makes of it: no
/// trailing zero in the mantissa unless at scale 0, and zero only at scale 0
/// (the same rule without `Decimal::normalize`'s 96-bit divisions).
fn is_canonical(mantissa: i128, scale: u32) -> bool {
    scale == 0 || (mantissa != 0 && mantissa % 10 != 0)
}

impl Encode for Amount {
    fn encode<E: Encoder>(&self, encoder: &mut E) -> Result<(), EncodeError> {
        encode_decimal(self.0, encoder)
    }
}

impl<Context> Decode<Context> for Amount {
    fn decode<D: Decoder<Context = Context>>(decoder: &mut D) -> Result<Self, DecodeError> {
        let d = decode_decimal(decoder)?;
        // Canonical already: only the scale is left to check (`from_decimal`'s rule).
        if d.scale() > AMOUNT_DECIMAL_PLACES_MAX {
            return Err(DecodeError::OtherString(AmountError::TooPrecise { text: d.to_string() }.to_string()));
        }
        Ok(Amount(d))
    }
}
bincode::impl_borrow_decode!(Amount);

impl Encode for Rate {
    fn encode<E: Encoder>(&self, encoder: &mut E) -> Result<(), EncodeError> {
        encode_decimal(self.0, encoder)
    }
}

impl<Context> Decode<Context> for Rate {
    fn decode<D: Decoder<Context = Context>>(decoder: &mut D) -> Result<Self, DecodeError> {
        let d = decode_decimal(decoder)?;
        Rate::new(d).map_err(|e| DecodeError::OtherString(e.to_string()))
    }
}
bincode::impl_borrow_decode!(Rate);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_canonical_check_agrees_with_normalize() {
        for scale in 0..=8u32 {
            for mantissa in (-1_050i128..=1_050).chain([i128::from(i64::MAX), -i128::from(i64::MAX), 10i128.pow(20)]) {
                let d = Decimal::try_from_i128_with_scale(mantissa, scale).expect("in range");
                let by_normalize = canonical(d).mantissa() == mantissa && canonical(d).scale() == scale;
                assert_eq!(is_canonical(mantissa, scale), by_normalize, "{mantissa} at scale {scale}");
            }
        }
    }

    #[test]
    fn decoding_refuses_non_canonical_and_too_precise_amounts() {
        let config = crate::event::bincode_config();
        let encode = |mantissa: i128, scale: u32| bincode::encode_to_vec((mantissa, scale), config).expect("encodes");
        let decode = |bytes: &[u8]| bincode::decode_from_slice::<Amount, _>(bytes, config).map(|(a, _)| a);
        assert_eq!(decode(&encode(125, 2)).expect("canonical"), Amount::from_micros(1_250_000));
        assert_eq!(decode(&encode(0, 0)).expect("canonical zero"), Amount::ZERO);
        for (mantissa, scale) in [(120, 2), (0, 3), (-10, 1)] {
            let err = decode(&encode(mantissa, scale)).expect_err("not canonical").to_string();
            assert!(err.contains("canonical form"), "{err}");
        }
        let err = decode(&encode(1, 7)).expect_err("seven places").to_string();
        assert!(err.contains("more than 6 decimal places"), "{err}");
    }
}
