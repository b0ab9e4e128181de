//! The commands, one file each.

pub mod login;
pub mod logout;
pub mod request;
pub mod status;
pub mod token;

/// Text from a server, safe for a terminal: control characters (escape sequences) become `?`.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn printable() {
        assert_eq!(super::printable("eve\u{1b}[2J\n"), "eve?[2J?");
    }
}
