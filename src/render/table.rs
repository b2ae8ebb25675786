//! Plain aligned tables (no box characters, so they survive pipes and logs). Widths are
//! measured on the text before colour is applied.

use super::Style;

pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<(String, Option<Painter>)>>,
}

pub type Painter = fn(&Style, &str) -> String;

impl Table {
    pub fn new(headers: &[&str]) -> Self {
        Self {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Add a row of plain cells.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows
            .push(cells.into_iter().map(|c| (c, None)).collect());
    }

    /// Add a row whose cells may carry a painter applied after alignment.
    pub fn row_painted(&mut self, cells: Vec<(String, Option<Painter>)>) {
        self.rows.push(cells);
    }

    pub fn render(&self, style: &Style) -> String {
        let cols = self.headers.len();
        let mut width: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (i, (c, _)) in r.iter().enumerate().take(cols) {
                width[i] = width[i].max(c.chars().count());
            }
        }
        let mut out = String::new();
        let header: Vec<String> = self
            .headers
            .iter()
            .enumerate()
            .map(|(i, h)| pad(h, width[i], i + 1 == cols))
            .collect();
        out.push_str(&style.bold(header.join("  ").trim_end()));
        out.push('\n');
        for r in &self.rows {
            let cells: Vec<String> = r
                .iter()
                .enumerate()
                .take(cols)
                .map(|(i, (c, paint))| {
                    let padded = pad(c, width[i], i + 1 == cols);
                    match paint {
                        Some(p) => {
                            let extra = &padded[c.len()..];
                            format!("{}{extra}", p(style, c))
                        }
                        None => padded,
                    }
                })
                .collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
        out
    }
}

fn pad(s: &str, w: usize, last: bool) -> String {
    if last {
        s.to_owned()
    } else {
        format!("{s}{}", " ".repeat(w.saturating_sub(s.chars().count())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_columns_and_ignores_colour_codes() {
        let mut t = Table::new(&["A", "HEALTH", "N"]);
        t.row_painted(vec![
            ("x".into(), None),
            ("healthy".into(), Some(|s: &Style, c: &str| s.green(c))),
            ("1".into(), None),
        ]);
        t.row(vec!["longer".into(), "down".into(), "22".into()]);
        let plain = t.render(&Style::plain());
        assert_eq!(
            plain,
            "A       HEALTH   N\nx       healthy  1\nlonger  down     22\n"
        );
        let colored = t.render(&Style { color: true });
        assert!(colored.contains("\x1b[32mhealthy\x1b[0m  1"), "{colored:?}");
    }
}
