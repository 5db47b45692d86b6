use super::*;

fn redactor(pairs: &[(&str, &str)]) -> Redactor {
    Redactor::new(
        &pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

#[test]
fn every_occurrence_of_every_value_is_masked() {
    let r = redactor(&[("A", "alpha-secret-1"), ("B", "bravo!22")]);
    assert_eq!(
        r.mask("x alpha-secret-1 y bravo!22alpha-secret-1 bravo!22"),
        "x [secret:A] y [secret:B][secret:A] [secret:B]"
    );
    assert_eq!(r.mask("nothing here"), "nothing here");
    assert_eq!(r.mask("été alpha-secret-1é"), "été [secret:A]é");
}

#[test]
fn overlapping_values_are_masked_as_one_and_self_overlaps_whole() {
    // B's value starts inside A's: masking A alone would show the rest of B.
    let r = redactor(&[("A", "abcdefgh"), ("B", "ghijkl")]);
    assert_eq!(r.mask("<abcdefghijkl>"), "<[secret:A]>");
    let r = redactor(&[("R", "abababab")]);
    assert_eq!(r.mask("ababababab!"), "[secret:R]!");
}

#[test]
fn lines_trimmed_forms_and_json_escapes_are_masked() {
    // A value read from a file ends with a newline; a PEM key has many lines.
    let r = redactor(&[
        ("F", "token-from-file\n"),
        (
            "PEM",
            "-----BEGIN KEY-----\nMIIEvQIBADANBgkq\nhkiG9w0B\n-----END KEY-----\n",
        ),
        ("Q", "pa\"ss\\word"),
    ]);
    assert_eq!(r.mask("t=token-from-file."), "t=[secret:F].");
    assert_eq!(r.mask("key line MIIEvQIBADANBgkq"), "key line [secret:PEM]");
    assert_eq!(r.mask(r#"{"p":"pa\"ss\\word"}"#), r#"{"p":"[secret:Q]"}"#);
    assert_eq!(r.mask("raw pa\"ss\\word"), "raw [secret:Q]");
    assert!(r.unmasked().is_empty());
}

#[test]
fn short_values_are_left_alone_and_named() {
    let r = redactor(&[("PIN", "1234"), ("OK", "long-enough"), ("EMPTY", "")]);
    assert_eq!(r.mask("pin 1234 long-enough"), "pin 1234 [secret:OK]");
    assert_eq!(r.unmasked(), ["PIN".to_string()]);
    assert!(redactor(&[]).is_empty() && redactor(&[("PIN", "1234")]).is_empty());
}

#[test]
fn a_value_longer_than_a_pattern_is_masked_whole() {
    let long: String = (0..3000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let long = format!("é{long}");
    let r = redactor(&[("BIG", &long)]);
    assert_eq!(r.mask(&format!("<{long}>")), "<[secret:BIG]>");
}

#[test]
fn a_kept_prefix_masks_a_value_that_straddles_its_end() {
    let r = redactor(&[("A", "alpha-secret-1")]);
    let text = "0123alpha-secret-1 tail";
    assert_eq!(r.mask_prefix(text, 8), "0123[secret:A]");
    assert_eq!(r.mask_prefix(text, 4), "0123");
    assert_eq!(Redactor::blind().mask("alpha-secret-1"), HIDDEN);
}
