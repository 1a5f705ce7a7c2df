//! How run command parameters reach a script on the VM, and pitr's encoded
//! arguments.
//!
//! Azure hands parameters (plain and protected) to the script through a
//! command layer on the VM that cuts a value at its first space and consumes
//! `^ & % < > | "` (azure-powershell #7269, #29880, #19087, azure-cli
//! #25042). [`command_layer`] does the same, so an unencoded value fails here
//! as it would on a real VM.
//!
//! Encoded arguments: a parameter `PitrArgs` (plain) or `PitrSecrets`
//! (protected) holds base64url (RFC 4648 section 5: `A-Z a-z 0-9 - _`, no
//! padding) of a UTF-8 JSON object whose values are strings; base64url
//! survives the command layer. A script that uses `$PitrArgs` /
//! `$PitrSecrets` (outside its `param(...)` block) gets the object's
//! properties by name; a value that is absent, empty or not such an object
//! makes the script fail with exit code 1, as the decoding in PowerShell
//! would.

/// What the VM's command layer leaves of a parameter value: cut at the
/// first space, with `^ & % < > | "` removed.
pub(crate) fn command_layer(value: &str) -> String {
    let cut = value.split(' ').next().unwrap_or("");
    cut.chars()
        .filter(|c| !matches!(c, '^' | '&' | '%' | '<' | '>' | '|' | '"'))
        .collect()
}

fn b64url_value(c: u8) -> Option<u32> {
    match c {
        b'A'..=b'Z' => Some(u32::from(c - b'A')),
        b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
        b'-' => Some(62),
        b'_' => Some(63),
        _ => None,
    }
}

/// Decodes unpadded base64url; None for any other character (padding
/// included) or an impossible length.
pub(crate) fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    if bytes.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc: u32 = 0;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= b64url_value(c)? << (18 - 6 * i);
        }
        let [_, b0, b1, b2] = acc.to_be_bytes();
        out.push(b0);
        if chunk.len() > 2 {
            out.push(b1);
        }
        if chunk.len() > 3 {
            out.push(b2);
        }
    }
    Some(out)
}

/// Encodes base64url without padding (for tests and tools).
pub fn b64url_encode(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// The properties of an encoded argument, or the stderr line PowerShell
/// would print. `name` is the parameter (for the message); the value is
/// never echoed, it may be a secret.
pub(crate) fn decode_args(
    name: &str,
    value: Option<&str>,
) -> Result<Vec<(String, String)>, String> {
    let value = value.unwrap_or("");
    if value.is_empty() {
        return Err(format!(
            "ConvertFrom-Json : Cannot bind argument to parameter 'InputObject' because it is an empty string. (decoding ${name})"
        ));
    }
    let Some(bytes) = b64url_decode(value) else {
        return Err(format!(
            "Exception calling \"FromBase64String\" with \"1\" argument(s): \"The input is not a valid Base-64 string as it contains a non-base 64 character, more than two padding characters, or an illegal character among the padding characters.\" (decoding ${name})"
        ));
    };
    let text = String::from_utf8_lossy(&bytes);
    let parsed: serde_json::Value = serde_json::from_str(&text)
        .map_err(|_| format!("ConvertFrom-Json : Invalid JSON primitive. (decoding ${name})"))?;
    let Some(obj) = parsed.as_object() else {
        return Err(format!(
            "ConvertFrom-Json : ${name} must hold a JSON object whose values are strings."
        ));
    };
    let mut props = Vec::with_capacity(obj.len());
    for (k, v) in obj {
        let Some(s) = v.as_str() else {
            return Err(format!(
                "ConvertFrom-Json : property '{k}' of ${name} is not a string (the values must be strings)."
            ));
        };
        props.push((k.clone(), s.to_string()));
    }
    Ok(props)
}

/// The script text without its `param(...)` block.
fn without_param_block(script: &str) -> String {
    let lower = script.to_ascii_lowercase();
    let Some(start) = lower.find("param(").or_else(|| lower.find("param (")) else {
        return script.to_string();
    };
    let Some(open) = script[start..].find('(').map(|o| start + o) else {
        return script.to_string();
    };
    let mut depth = 0usize;
    for (i, c) in script[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    let end = open + i + 1;
                    return format!("{}{}", &script[..start], &script[end..]);
                }
            }
            _ => {}
        }
    }
    script[..start].to_string()
}

/// True when the script uses `$name` outside its `param(...)` block.
pub(crate) fn uses_variable(script: &str, name: &str) -> bool {
    let body = without_param_block(script).to_ascii_lowercase();
    let needle = format!("${}", name.to_ascii_lowercase());
    let mut from = 0;
    while let Some(i) = body[from..].find(&needle) {
        let end = from + i + needle.len();
        let next = body.as_bytes().get(end).copied();
        if !next.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return true;
        }
        from = end;
    }
    false
}

/// Case-insensitive lookup in name/value pairs.
pub(crate) fn lookup<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_layer_cuts_and_consumes() {
        assert_eq!(command_layer("AxDB"), "AxDB");
        assert_eq!(command_layer("pitr job 1234"), "pitr");
        assert_eq!(command_layer("p^a&s%s<w>o|r\"d"), "password");
        assert_eq!(command_layer(" leading"), "");
        assert_eq!(
            command_layer("K:\\AosService\\PackagesLocalDirectory"),
            "K:\\AosService\\PackagesLocalDirectory"
        );
        let enc = b64url_encode(br#"{"SqlPwd":"a b&c|d\"e%f"}"#);
        assert_eq!(command_layer(&enc), enc, "base64url survives");
    }

    #[test]
    fn base64url_round_trip() {
        for data in [
            &b""[..],
            b"f",
            b"fo",
            b"foo",
            b"foob",
            b"fooba",
            b"foobar",
            &[0xfb, 0xff, 0xfe],
        ] {
            let e = b64url_encode(data);
            assert!(!e.contains(['=', '+', '/']), "{e}");
            assert_eq!(b64url_decode(&e).as_deref(), Some(data));
        }
        assert_eq!(b64url_encode(&[0xfb, 0xff]), "-_8");
        // Fixed samples (RFC 4648 section 10, in the URL alphabet without
        // padding): what a script on a VM decodes.
        for (data, text) in [
            (&b""[..], ""),
            (b"f", "Zg"),
            (b"fo", "Zm8"),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg"),
            (b"fooba", "Zm9vYmE"),
            (b"foobar", "Zm9vYmFy"),
            (&[0xfb, 0xff, 0xfe], "-__-"),
        ] {
            assert_eq!(b64url_encode(data), text);
            assert_eq!(b64url_decode(text).as_deref(), Some(data), "{text}");
        }
        assert_eq!(b64url_decode("Zm9vYg=="), None, "padding is refused");
        assert_eq!(
            b64url_decode("Zm9v+g"),
            None,
            "the standard alphabet is refused"
        );
        assert_eq!(b64url_decode("Z"), None);
    }

    #[test]
    fn decoding_args() {
        let v = b64url_encode(r#"{"Server":"sql-x","Database":"AxDB","Note":"é ü"}"#.as_bytes());
        let p = decode_args("PitrArgs", Some(&v)).unwrap();
        assert_eq!(lookup(&p, "server"), Some("sql-x"));
        assert_eq!(lookup(&p, "Note"), Some("é ü"));
        assert!(decode_args("PitrArgs", None)
            .unwrap_err()
            .contains("empty string"));
        assert!(decode_args("PitrArgs", Some("not base64!"))
            .unwrap_err()
            .contains("FromBase64String"));
        let e = decode_args("PitrSecrets", Some(&b64url_encode(b"{nope"))).unwrap_err();
        assert!(
            e.contains("Invalid JSON primitive") && e.contains("$PitrSecrets"),
            "{e}"
        );
        assert!(decode_args("PitrArgs", Some(&b64url_encode(b"[1]"))).is_err());
        assert!(decode_args("PitrArgs", Some(&b64url_encode(br#"{"a":1}"#))).is_err());
    }

    #[test]
    fn references() {
        let s = "param([string]$PitrArgs, [string]$PitrSecrets)\n$a = $PitrArgs | Decode";
        assert!(uses_variable(s, "PitrArgs"));
        assert!(!uses_variable(s, "PitrSecrets"), "declared only");
        assert!(!uses_variable("$PitrArgsX = 1", "PitrArgs"));
        assert!(uses_variable("x $pitrargs.y", "PitrArgs"));
        assert!(!uses_variable("param(", "PitrArgs"));
    }
}
