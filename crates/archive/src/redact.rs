//! Errors of the object store in words, with every credential taken out: what the
//! status, the log and `/metrics` say must never hold a secret.

/// Environment variables whose values are secrets (or identify one).
const SECRET_VARS: &[&str] = &[
    "AWS_SECRET_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SESSION_TOKEN",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_CLIENT_SECRET",
    "GOOGLE_SERVICE_ACCOUNT_KEY",
];

/// `text` with the value of every credential variable replaced by `***`.
pub(crate) fn scrub(text: &str) -> String {
    let mut s = text.to_owned();
    for v in SECRET_VARS {
        if let Ok(secret) = std::env::var(v)
            && secret.len() >= 4
        {
            s = s.replace(&secret, "***");
        }
    }
    s
}

/// Whether `code` stands alone in `text` as a number: "status 403" does, the "403" in
/// "in 301.304037ms" does not (a timing once read as a refusal of the credentials).
fn has_status(text: &str, code: &str) -> bool {
    let number = |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit() || c == '.');
    text.match_indices(code).any(|(i, m)| {
        !number(text[..i].chars().next_back()) && !number(text[i + m.len()..].chars().next())
    })
}

/// What went wrong, said first in words, then the store's own message (shortened).
pub(crate) fn in_words(e: &object_store::Error) -> String {
    let raw = scrub(&e.to_string());
    let lower = raw.to_ascii_lowercase();
    let words = if has_status(&lower, "403")
        || lower.contains("invalidaccesskeyid")
        || lower.contains("signaturedoesnotmatch")
        || lower.contains("accessdenied")
        || lower.contains("forbidden")
    {
        "the archive refused the credentials (check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the instance role)"
    } else if lower.contains("nosuchbucket") {
        "the bucket does not exist"
    } else if lower.contains("connection refused")
        || lower.contains("error sending request")
        || lower.contains("dns error")
        || lower.contains("timed out")
        || lower.contains("connect")
    {
        "the archive cannot be reached"
    } else if matches!(e, object_store::Error::NotFound { .. }) {
        "the object is not in the archive"
    } else {
        "the archive answered with an error"
    };
    let mut short: String = raw.chars().take(400).collect();
    if short.len() < raw.len() {
        short.push('…');
    }
    format!("{words}: {}", short.replace('\n', " "))
}

#[cfg(test)]
mod tests {
    use super::has_status;

    #[test]
    fn a_status_code_is_a_whole_number_not_digits_of_a_timing() {
        let unreachable = "error performing post http://127.0.0.1:37019/x?uploads= in 301.304037ms, after 2 retries - http error: error sending request";
        assert!(!has_status(unreachable, "403"));
        assert!(has_status("client error with status 403 forbidden", "403"));
        assert!(has_status("403", "403"));
        assert!(!has_status("14031", "403"));
    }
}
