use ledger::amount::AmountError;
use ledger::{Amount, Rate};
use rust_decimal::Decimal;
use std::str::FromStr;

use crate::amt;

fn rate(s: &str) -> Rate {
    Rate::new(Decimal::from_str(s).expect("decimal")).expect("rate")
}

#[test]
fn canonical_text() {
    for (input, text) in [
        ("14", "14"),
        ("14.000", "14"),
        ("0.01", "0.01"),
        ("0.010000", "0.01"),
        ("-2.50", "-2.5"),
        ("-0", "0"),
        ("0.000001", "0.000001"),
        ("007", "7"),
    ] {
        assert_eq!(amt(input).to_string(), text, "{input}");
    }
}

#[test]
fn parse_refusals() {
    assert!(matches!(Amount::from_str("0.0000001"), Err(AmountError::TooPrecise { .. })));
    assert!(matches!(Amount::from_str("1.0000000"), Err(AmountError::TooPrecise { .. })));
    for bad in ["", "-", "1e5", "+1", ".5", "1.", "1,5", " 1", "NaN", "1.2.3", "--1", "12345678901234567890123456789"] {
        assert!(matches!(Amount::from_str(bad), Err(AmountError::Syntax { .. })), "{bad:?}");
    }
}

#[test]
fn half_even_to_trunkward() {
    for (quant, r, expected) in [
        ("0.000001", "0.5", "0"),          // 0.0000005 -> 0
        ("0.000003", "0.5", "0.000002"),   // 0.0000015 -> 0.000002
        ("0.000005", "0.5", "0.000002"),   // 0.0000025 -> 0.000002
        ("0.000007", "0.5", "0.000004"),   // 0.0000035 -> 0.000004
        ("-0.000003", "0.5", "-0.000002"), // symmetric
        ("-0.000001", "0.5", "0"),         // never -0
        ("14", "3", "42"),
        ("1.234567", "0.1", "0.123457"), // 0.1234567 -> up (not a midpoint)
    ] {
        assert_eq!(amt(quant).to_trunkward(rate(r)).expect("fits").to_string(), expected, "{quant} * {r}");
    }
}

#[test]
fn half_even_from_trunkward() {
    for (quant, r, expected) in [
        ("1", "3", "0.333333"),
        ("2", "3", "0.666667"),
        ("0.000001", "2", "0"),
        ("0.000003", "2", "0.000002"),
        ("0.000005", "2", "0.000002"),
        ("42", "3", "14"),
        ("-0.000003", "2", "-0.000002"),
    ] {
        assert_eq!(amt(quant).from_trunkward(rate(r)).expect("fits").to_string(), expected, "{quant} / {r}");
    }
}

#[test]
fn arithmetic_overflow_is_an_error() {
    let huge = Amount::from_decimal(Decimal::MAX).expect("integer");
    assert_eq!(huge.checked_add(Amount::from_units(1)), Err(AmountError::Overflow));
    assert_eq!((-huge).checked_sub(Amount::from_units(1)), Err(AmountError::Overflow));
    assert_eq!(huge.to_trunkward(rate("2")), Err(AmountError::Overflow));
    assert!(Rate::new(Decimal::ZERO).is_err());
    assert!(Rate::new(Decimal::NEGATIVE_ONE).is_err());
    assert_eq!(Amount::from_micros(1_500_000).to_string(), "1.5");
}
