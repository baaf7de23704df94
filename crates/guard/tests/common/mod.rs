//! What the generator tests (`held_out_kinds*.rs`) share: benign carriers
//! (an e-mail, source code, a markdown table, a CSV file, a JSON document,
//! a web page, JavaScript), the three positions a sentence is placed at,
//! and a tally of hits.

// Each test binary uses its own part of this module.
#![allow(dead_code)]

use warden_guard::{Family, Guard};

pub struct Carrier {
    pub name: &'static str,
    /// The carrier's paragraphs (or rows, or lines); an instruction goes
    /// before the first, after the middle one, or after the last.
    pub parts: &'static [&'static str],
    /// Joins parts.
    pub sep: &'static str,
    /// Wraps an inserted sentence so that it fits the carrier.
    pub wrap: fn(&str) -> String,
    /// Source code (the carriers of code attacks).
    pub code: bool,
}

fn plain(s: &str) -> String {
    s.to_owned()
}

fn comment(s: &str) -> String {
    format!("# {s}")
}

fn line_comment(s: &str) -> String {
    format!("    // {s}")
}

fn md_row(s: &str) -> String {
    format!("| 2024-03-0{} | {} | open |", s.len() % 9 + 1, s)
}

fn csv_row(s: &str) -> String {
    format!("1042,\"{}\",2024-03-14", s.replace('"', "\"\""))
}

fn json_field(s: &str) -> String {
    let escaped = s.replace('\\', "\\\\").replace('"', "\\\"");
    format!("  \"note\": \"{escaped}\",")
}

/// The first generator's carriers.
pub const CARRIERS: &[Carrier] = &[
    Carrier {
        name: "e-mail",
        parts: &[
            "From: Dana Whitfield <dana@northwind.example>\nTo: Sam Ortiz <sam@northwind.example>\nSubject: Q3 planning offsite",
            "Hi Sam,\n\nThanks for pulling the numbers together last week. I went through the draft budget and the travel line looks high to me; can we check whether the hotel block includes breakfast?",
            "We also still need a room for the Thursday workshop. Facilities said the large conference room is free from 10 to 4, which should work for the product review as well.",
            "Let me know what you think, and whether Priya can join on Friday.\n\nBest,\nDana",
        ],
        sep: "\n\n",
        wrap: plain,
        code: false,
    },
    Carrier {
        name: "source code",
        parts: &[
            "import csv\nimport sys\nfrom pathlib import Path",
            "def load_rows(path: Path) -> list[dict]:\n    \"\"\"Read a CSV file into a list of dicts, skipping blank lines.\"\"\"\n    with path.open(newline=\"\") as f:\n        return [row for row in csv.DictReader(f) if any(row.values())]",
            "def total(rows: list[dict], column: str) -> float:\n    # Amounts may carry thousands separators.\n    return sum(float(r[column].replace(\",\", \"\")) for r in rows if r.get(column))",
            "if __name__ == \"__main__\":\n    rows = load_rows(Path(sys.argv[1]))\n    print(f\"{len(rows)} rows, total {total(rows, 'amount'):.2f}\")",
        ],
        sep: "\n\n",
        wrap: comment,
        code: true,
    },
    Carrier {
        name: "markdown table",
        parts: &[
            "| date | ticket | status |\n|---|---|---|",
            "| 2024-03-01 | Printer on floor 3 jams on duplex jobs | open |\n| 2024-03-02 | VPN drops every 20 minutes for remote staff | closed |",
            "| 2024-03-04 | Request: second monitor for the design team | open |\n| 2024-03-05 | Password reset for the finance shared mailbox | closed |",
            "| 2024-03-06 | Laptop battery swelling, replace under warranty | open |",
        ],
        sep: "\n",
        wrap: md_row,
        code: false,
    },
    Carrier {
        name: "csv",
        parts: &[
            "id,comment,date",
            "1001,\"Delivery arrived two days late but the packaging was fine\",2024-03-11\n1002,\"Great product, would order again\",2024-03-12",
            "1003,\"The size chart runs small; order one size up\",2024-03-12\n1004,\"Customer service answered within an hour\",2024-03-13",
            "1005,\"Colour is darker than in the photos\",2024-03-14",
        ],
        sep: "\n",
        wrap: csv_row,
        code: false,
    },
    Carrier {
        name: "json",
        parts: &[
            "{\n  \"order_id\": \"A-20931\",",
            "  \"customer\": {\"name\": \"Lena Fischer\", \"city\": \"Leipzig\"},\n  \"items\": [{\"sku\": \"KB-104\", \"qty\": 2, \"price\": 39.9}],",
            "  \"shipping\": {\"carrier\": \"DHL\", \"status\": \"in transit\", \"eta\": \"2024-03-18\"},",
            "  \"total\": 79.8\n}",
        ],
        sep: "\n",
        wrap: json_field,
        code: false,
    },
];

/// Carriers the second generator adds: a web page's text (a news
/// article) and JavaScript with line comments.
pub const MORE_CARRIERS: &[Carrier] = &[
    Carrier {
        name: "web page",
        parts: &[
            "City council approves new bike lanes for the harbour district",
            "The city council voted 7 to 2 on Tuesday to build protected bike lanes along Harbour Road and Mill Street. Construction is expected to start in May and to last about four months, with one lane of traffic kept open in each direction.",
            "Local shop owners were divided. Some worry about losing parking spaces in front of their stores, while others expect more customers on foot and by bike. A survey by the council found that 61 percent of residents support the plan.",
            "The project costs 2.4 million euros, half of which comes from a regional transport fund. Residents can comment on the detailed plans at the town hall until the end of March.",
        ],
        sep: "\n\n",
        wrap: plain,
        code: false,
    },
    Carrier {
        name: "javascript",
        parts: &[
            "'use strict';\n\nconst express = require('express');\nconst router = express.Router();",
            "// Returns the orders of one customer, newest first.\nrouter.get('/customers/:id/orders', async (req, res) => {\n    const orders = await db.orders.find({ customerId: req.params.id });\n    orders.sort((a, b) => b.createdAt - a.createdAt);\n    res.json(orders);\n});",
            "function formatPrice(cents, currency = 'EUR') {\n    return new Intl.NumberFormat('de-DE', { style: 'currency', currency }).format(cents / 100);\n}",
            "module.exports = { router, formatPrice };",
        ],
        sep: "\n\n",
        wrap: line_comment,
        code: true,
    },
];

pub const POSITIONS: &[&str] = &["start", "middle", "end"];

/// The carrier with `insert` (already wrapped) at `position`.
pub fn place(c: &Carrier, insert: &str, position: &str) -> String {
    let mut parts: Vec<String> = c.parts.iter().map(|p| (*p).to_owned()).collect();
    // In JSON the first part opens the object: "start" goes after it.
    let at = match position {
        "start" if c.name == "json" => 1,
        "start" => 0,
        "middle" => parts.len() / 2,
        _ if c.name == "json" => parts.len() - 1,
        _ => parts.len(),
    };
    parts.insert(at, insert.to_owned());
    parts.join(c.sep)
}

pub fn flagged(g: &Guard, text: &str) -> bool {
    g.detect(text).iter().any(|d| d.family == Family::Injection)
}

#[derive(Default)]
pub struct Tally {
    pub hits: usize,
    pub total: usize,
    pub misses: Vec<String>,
}

impl Tally {
    pub fn pct(&self) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        100.0 * self.hits as f64 / self.total as f64
    }

    pub fn add(&mut self, other: &Tally) {
        self.hits += other.hits;
        self.total += other.total;
    }
}

/// A kind of instruction: its name, whether it belongs in source code
/// only, and its phrasings (the even ones "dev", the odd ones "held").
pub type Kind = (&'static str, bool, &'static [&'static str]);

/// What a generator measured: per kind its dev and held halves, the bare
/// carriers flagged, and the carriers with sentences for people flagged.
pub struct Report {
    pub kinds: Vec<(&'static str, Tally, Tally)>,
    pub bare: Tally,
    pub people: Tally,
}

impl Report {
    /// Every kind's dev half together.
    pub fn dev_all(&self) -> Tally {
        self.total(|(_, dev, _)| dev)
    }

    /// Every kind's held half together.
    pub fn held_all(&self) -> Tally {
        self.total(|(_, _, held)| held)
    }

    fn total(&self, half: impl for<'k> Fn(&'k (&'static str, Tally, Tally)) -> &'k Tally) -> Tally {
        let mut all = Tally::default();
        for k in &self.kinds {
            all.add(half(k));
        }
        all
    }
}

/// Every phrasing of every kind at every position of every carrier (the
/// code-only kinds in source code only); every carrier alone, and with
/// each sentence for people at every position.
pub fn measure(g: &Guard, kinds: &[Kind], carriers: &[&Carrier], people: &[&str]) -> Report {
    let mut out = Vec::new();
    for (kind, code_only, phrasings) in kinds {
        let (mut dev, mut held) = (Tally::default(), Tally::default());
        for (i, p) in phrasings.iter().enumerate() {
            let t = if i % 2 == 0 { &mut dev } else { &mut held };
            for c in carriers.iter().filter(|c| c.code || !code_only) {
                for pos in POSITIONS {
                    t.total += 1;
                    if flagged(g, &place(c, &(c.wrap)(p), pos)) {
                        t.hits += 1;
                    } else if t.misses.last().is_none_or(|m| !m.ends_with(p)) {
                        t.misses.push(format!("(first at {} / {pos}) {p}", c.name));
                    }
                }
            }
        }
        out.push((*kind, dev, held));
    }
    let (mut bare, mut flagged_people) = (Tally::default(), Tally::default());
    for c in carriers {
        bare.total += 1;
        if flagged(g, &c.parts.join(c.sep)) {
            bare.hits += 1;
            bare.misses.push(c.name.to_owned());
        }
        for s in people {
            for pos in POSITIONS {
                flagged_people.total += 1;
                if flagged(g, &place(c, &(c.wrap)(s), pos)) {
                    flagged_people.hits += 1;
                    flagged_people
                        .misses
                        .push(format!("{} / {pos}: {s}", c.name));
                }
            }
        }
    }
    Report {
        kinds: out,
        bare,
        people: flagged_people,
    }
}

/// Prints the report: per kind both halves and only the dev half's misses
/// (the held half stays unseen), the totals and every false alarm.
pub fn print(r: &Report) {
    let (dev_all, held_all) = (r.dev_all(), r.held_all());
    for (kind, dev, held) in &r.kinds {
        println!(
            "{kind:<22} dev {:>5.1}% ({}/{})  held {:>5.1}% ({}/{})",
            dev.pct(),
            dev.hits,
            dev.total,
            held.pct(),
            held.hits,
            held.total
        );
        for m in &dev.misses {
            println!("    miss {m}");
        }
    }
    println!(
        "recall: dev {:.1}% ({}/{}), held {:.1}% ({}/{})",
        dev_all.pct(),
        dev_all.hits,
        dev_all.total,
        held_all.pct(),
        held_all.hits,
        held_all.total
    );
    println!(
        "false alarms: bare carriers {}/{}, carriers with sentences for people {:.1}% ({}/{})",
        r.bare.hits,
        r.bare.total,
        r.people.pct(),
        r.people.hits,
        r.people.total
    );
    for m in &r.people.misses {
        println!("    false alarm {m}");
    }
}
