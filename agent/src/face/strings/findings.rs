//! A finding's headline in the person's language. The rules write their
//! titles in English, with the numbers in them, and the terminal and the
//! technician keep those; the window says the same thing in the person's
//! words, keyed by the finding's id, with its subject and the one number
//! that matters. An id without words here keeps the English title.

use sprijin_proto::message::diag::Finding;

use super::Lang;

/// The headline of `f` in `lang`, and whether it is a translation (then
/// the window shows the English line too, as the technician sees it).
pub fn headline(lang: Lang, f: &Finding) -> (String, bool) {
    match lang {
        Lang::En => (f.title.clone(), false),
        Lang::Ro => match romanian(f) {
            Some(words) => (words, true),
            None => (f.title.clone(), false),
        },
    }
}

/// The value of the evidence labelled `label`, or "" when there is none.
fn evidence<'a>(f: &'a Finding, label: &str) -> &'a str {
    f.evidence
        .iter()
        .find(|e| e.label == label)
        .map_or("", |e| e.value.as_str())
}

fn romanian(f: &Finding) -> Option<String> {
    let subject = f.subject.as_deref().unwrap_or("");
    Some(match f.id.as_str() {
        "cpu-saturated" => "Procesorul este ocupat aproape în întregime".into(),
        "load-above-cores" => "Sunt mai multe sarcini decât poate duce procesorul".into(),
        "high-temperature" => format!("{subject} este prea fierbinte"),
        "disk-nearly-full" => format!(
            "Discul {subject} este aproape plin: mai are liber {}",
            evidence(f, "free")
        ),
        "disk-filling" => format!("Discul {subject} se umple repede"),
        "read-only-file-system" => format!("Pe discul {subject} nu se mai poate scrie"),
        "inodes-exhausted" => format!("Discul {subject} nu mai poate primi fișiere noi"),
        "deleted-files-hold-space" => {
            format!("Un program (pid {subject}) ține ocupat spațiul unor fișiere șterse")
        }
        "memory-nearly-exhausted" => "Memoria este aproape plină".into(),
        "heavy-swapping" | "memory-thrash" => {
            "Memoria nu ajunge: calculatorul mută mereu date pe disc".into()
        }
        "recent-oom-kills" => {
            format!("Sistemul a oprit programul {subject} pentru că nu mai avea memorie")
        }
        "network-errors" => format!("Conexiunea de rețea {subject} are erori"),
        "no-network-address" => "Calculatorul nu are adresă de rețea: nu ajunge la rețea".into(),
        "no-default-route" => "Calculatorul ajunge doar la rețeaua locală".into(),
        "name-resolution-failing" => {
            "Numele de site-uri nu pot fi găsite (DNS nu răspunde cum trebuie)".into()
        }
        "process-cpu-hog" => format!("Un program (pid {subject}) folosește mult procesorul"),
        "process-memory-hog" => format!("Un program (pid {subject}) folosește multă memorie"),
        "process-stuck" => format!("Un program (pid {subject}) s-a blocat"),
        "open-file-limit" => {
            format!("Un program (pid {subject}) a ajuns la limita de fișiere deschise")
        }
        "many-zombies" => "Multe procese terminate nu au fost încă strânse".into(),
        "long-uptime" => "Calculatorul nu a mai fost repornit de mult".into(),
        "restart-pending" => {
            "Este nevoie de o repornire pentru a termina instalarea actualizărilor".into()
        }
        "service-failed" => format!("Serviciul {subject} a căzut"),
        "service-stopped" => format!("Serviciul {subject} este oprit"),
        "restart-loop" => format!("{subject} se oprește și pornește iar și iar"),
        "clock-not-synchronized" => "Ceasul nu este sincronizat cu un server de timp".into(),
        "clock-off" => "Ceasul calculatorului este greșit".into(),
        "io-stall" => "Programele așteaptă mult după disc".into(),
        "cpu-stall" => "Programele așteaptă după procesor".into(),
        "group-process-limit" | "group-memory-limit" | "group-cpu-limit" => {
            format!("Un grup de programe ({subject}) a ajuns la limita sa")
        }
        "install-interrupted" => "O instalare de programe a rămas neterminată".into(),
        "package-lock-held" => "Instalarea de programe este blocată de alt proces".into(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sprijin_proto::message::diag::{Evidence, Severity};

    fn disk() -> Finding {
        Finding {
            id: "disk-nearly-full".into(),
            severity: Severity::Critical,
            title: "Disk /home is 95% full, 500.0 KiB free".into(),
            evidence: vec![Evidence::new("free", "500.0 KiB")],
            subject: Some("/home".into()),
            script: None,
            params: Vec::new(),
        }
    }

    #[test]
    fn english_keeps_the_rules_title_and_romanian_says_it_in_its_words() {
        assert_eq!(headline(Lang::En, &disk()), (disk().title, false));
        assert_eq!(
            headline(Lang::Ro, &disk()),
            (
                "Discul /home este aproape plin: mai are liber 500.0 KiB".to_string(),
                true
            )
        );
        let mut unknown = disk();
        unknown.id = "a-rule-added-later".into();
        assert_eq!(headline(Lang::Ro, &unknown), (unknown.title.clone(), false));
    }
}
