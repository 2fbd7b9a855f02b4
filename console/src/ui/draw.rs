//! Drawing the interactive console from the app state. Nothing here changes
//! the state; every view fits in 80x24 and reflows on resize.
//!
//! Most of what is drawn came from the agent's side (the host's name,
//! findings, process command lines, run output, refusal reasons), and a cell
//! of the screen is written to the terminal as it is. So every such string
//! is cleaned with [`clean`] where it is put in, and once the frame is drawn
//! [`neutralise`] replaces any cell that still holds a control character,
//! an escape sequence introducer or a bidirectional mark.

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, Borders, Clear, Gauge, List, ListItem, ListState, Paragraph, Row, Table, TableState,
    Tabs, Wrap,
};
use sprijin_proto::catalog::Risk;
use sprijin_proto::diag_text::{human_bytes, human_duration};
use sprijin_proto::message::diag::Severity;
use sprijin_proto::text::{REPLACEMENT, clean_line};

use super::app::{App, FetchLine, Prompt, Sort, TalkLine, View};

pub fn severity_style(s: Severity) -> Style {
    match s {
        Severity::Critical => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        Severity::Warning => Style::new().fg(Color::Yellow),
        Severity::Info => Style::new().fg(Color::Cyan),
    }
}

fn risk_style(r: Risk) -> Style {
    match r {
        Risk::High => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        Risk::Medium => Style::new().fg(Color::Yellow),
        _ => Style::new().fg(Color::Green),
    }
}

const KEYS: &str = "q quit  tab view  ↑↓ select  enter run  s sort  r refresh  c cancel  p report";

/// The keys of the Talk view.
const TALK_KEYS: &str = "q quit  tab view  m message  a ask  f fetch a file  ↑↓ select  p report";

/// One line of text from the other side, safe to put on the screen.
fn clean(text: &str) -> String {
    clean_line(text).into_owned()
}

/// Replaces every cell whose symbol is not safe to send to a terminal.
pub fn neutralise(buffer: &mut Buffer) {
    for cell in buffer.content.iter_mut() {
        if clean_line(cell.symbol()) != cell.symbol() {
            cell.set_char(REPLACEMENT);
        }
    }
}

pub fn draw(frame: &mut Frame, app: &App) {
    draw_views(frame, app);
    neutralise(frame.buffer_mut());
}

fn draw_views(frame: &mut Frame, app: &App) {
    let [header, tabs, body, status] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Length(1),
        Constraint::Min(5),
        Constraint::Length(2),
    ])
    .areas(frame.area());
    draw_header(frame, header, app);
    let titles: Vec<Line> = View::ALL
        .iter()
        .enumerate()
        .map(|(i, v)| Line::from(format!("{} {}", i + 1, v.title())))
        .collect();
    let selected = View::ALL.iter().position(|v| *v == app.view).unwrap_or(0);
    frame.render_widget(
        Tabs::new(titles)
            .select(selected)
            .highlight_style(Style::new().add_modifier(Modifier::REVERSED)),
        tabs,
    );
    match app.view {
        View::Overview => draw_overview(frame, body, app),
        View::Findings => draw_findings(frame, body, app, true),
        View::Processes => draw_processes(frame, body, app),
        View::Catalog => draw_catalog(frame, body, app),
        View::Runs => draw_runs(frame, body, app),
        View::Talk => draw_talk(frame, body, app),
    }
    let status_style = if app.ended.is_some() {
        Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
    } else {
        Style::new()
    };
    frame.render_widget(
        Paragraph::new(vec![
            Line::styled(clean(&app.status), status_style),
            Line::styled(
                if app.view == View::Talk {
                    TALK_KEYS
                } else {
                    KEYS
                },
                Style::new().fg(Color::DarkGray),
            ),
        ]),
        status,
    );
    if let Some(prompt) = &app.prompt {
        draw_prompt(frame, app, prompt);
    }
}

fn draw_header(frame: &mut Frame, area: Rect, app: &App) {
    let (os, uptime) = match &app.report {
        Some(r) => (
            clean(&format!(
                "{} {}",
                r.snapshot.host.os_name, r.snapshot.host.os_version
            )),
            human_duration(r.snapshot.host.uptime_secs),
        ),
        None => ("…".into(), "…".into()),
    };
    let state = match &app.ended {
        Some(_) => Span::styled("session ended", Style::new().fg(Color::Red)),
        None if app.record.is_direct() => {
            Span::styled("connected, direct", Style::new().fg(Color::Green))
        }
        None => Span::styled("connected through the relay", Style::new().fg(Color::Green)),
    };
    let line1 = Line::from(vec![
        Span::styled("Sprijin │ ", Style::new().fg(Color::DarkGray)),
        Span::styled(clean(&app.host), Style::new().add_modifier(Modifier::BOLD)),
        Span::raw(format!("  {os}  up {uptime}  ")),
        state,
    ]);
    let line2 = Line::from(format!(
        "technician {}  verification words: {}",
        clean(&app.technician),
        clean(&app.verification)
    ));
    frame.render_widget(
        Paragraph::new(vec![line1, line2]).block(Block::new().borders(Borders::BOTTOM)),
        area,
    );
}

fn gauge<'a>(label: &'a str, ratio: f64, text: String) -> Gauge<'a> {
    let color = if ratio >= 0.9 {
        Color::Red
    } else if ratio >= 0.75 {
        Color::Yellow
    } else {
        Color::Green
    };
    Gauge::default()
        .block(Block::new().title(label))
        .gauge_style(Style::new().fg(color))
        .ratio(ratio.clamp(0.0, 1.0))
        .label(text)
}

fn draw_overview(frame: &mut Frame, area: Rect, app: &App) {
    let Some(report) = &app.report else {
        frame.render_widget(Paragraph::new("loading the machine's state..."), area);
        return;
    };
    let s = &report.snapshot;
    let disks: Vec<_> = s
        .disks
        .iter()
        .filter(|d| d.total_bytes > 0)
        .take(2)
        .collect();
    let mut constraints = vec![Constraint::Length(2), Constraint::Length(2)];
    constraints.extend(disks.iter().map(|_| Constraint::Length(2)));
    constraints.push(Constraint::Min(3));
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints(constraints)
        .split(area);
    let cpu = f64::from(s.cpu.usage_percent) / 100.0;
    frame.render_widget(
        gauge(
            "CPU",
            cpu,
            format!(
                "{:.0}% of {} cores, load {:.2}",
                s.cpu.usage_percent, s.cpu.logical_cores, s.cpu.load_average.one
            ),
        ),
        rows[0],
    );
    let mem_used = s
        .memory
        .total_bytes
        .saturating_sub(s.memory.available_bytes);
    let mem = if s.memory.total_bytes > 0 {
        mem_used as f64 / s.memory.total_bytes as f64
    } else {
        0.0
    };
    frame.render_widget(
        gauge(
            "Memory",
            mem,
            format!(
                "{} of {} in use",
                human_bytes(mem_used),
                human_bytes(s.memory.total_bytes)
            ),
        ),
        rows[1],
    );
    for (i, d) in disks.iter().enumerate() {
        let used = d.total_bytes.saturating_sub(d.available_bytes);
        frame.render_widget(
            gauge(
                "Disk",
                used as f64 / d.total_bytes as f64,
                format!(
                    "{}  {} free of {}",
                    clean(&d.mount_point),
                    human_bytes(d.available_bytes),
                    human_bytes(d.total_bytes)
                ),
            ),
            rows[2 + i],
        );
    }
    draw_findings(frame, rows[rows.len() - 1], app, false);
}

fn draw_findings(frame: &mut Frame, area: Rect, app: &App, detailed: bool) {
    let findings = app.findings();
    let block = Block::new()
        .borders(Borders::TOP)
        .title(format!(" Findings ({}) ", findings.len()));
    if app.report.is_none() {
        frame.render_widget(Paragraph::new("loading...").block(block), area);
        return;
    }
    if findings.is_empty() {
        frame.render_widget(Paragraph::new("nothing looks wrong").block(block), area);
        return;
    }
    let items: Vec<ListItem> = findings
        .iter()
        .map(|f| {
            let mut lines = vec![Line::from(vec![
                Span::styled(
                    format!("{:<8}", format!("{:?}", f.severity).to_lowercase()),
                    severity_style(f.severity),
                ),
                Span::raw(clean(&f.title)),
            ])];
            if detailed {
                let evidence: Vec<String> = f
                    .evidence
                    .iter()
                    .map(|e| format!("{}: {}", clean(&e.label), clean(&e.value)))
                    .collect();
                lines.push(Line::styled(
                    format!("        {}", evidence.join(", ")),
                    Style::new().fg(Color::Gray),
                ));
            }
            if let Some(script) = &f.script {
                lines.push(Line::styled(
                    format!("        suggested: {} (enter to run)", clean(script)),
                    Style::new().fg(Color::DarkGray),
                ));
            }
            ListItem::new(lines)
        })
        .collect();
    let mut state = ListState::default().with_selected(Some(app.selected()));
    frame.render_stateful_widget(
        List::new(items)
            .block(block)
            .highlight_style(Style::new().add_modifier(Modifier::REVERSED)),
        area,
        &mut state,
    );
}

fn draw_processes(frame: &mut Frame, area: Rect, app: &App) {
    let procs = app.processes();
    let sort = match app.sort {
        Sort::Cpu => "CPU",
        Sort::Memory => "memory",
    };
    let count = app
        .report
        .as_ref()
        .map(|r| r.snapshot.processes.count)
        .unwrap_or(0);
    let rows: Vec<Row> = procs
        .iter()
        .map(|p| {
            Row::new(vec![
                p.pid.to_string(),
                format!("{:.1}", p.cpu_percent),
                human_bytes(p.memory_bytes),
                clean(p.user.as_deref().unwrap_or_default()),
                clean(&p.name),
                clean(&p.command),
            ])
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Length(8),
            Constraint::Length(6),
            Constraint::Length(10),
            Constraint::Length(10),
            Constraint::Length(16),
            Constraint::Min(10),
        ],
    )
    .header(
        Row::new(vec!["PID", "CPU%", "MEMORY", "USER", "NAME", "COMMAND"])
            .style(Style::new().add_modifier(Modifier::BOLD)),
    )
    .block(Block::new().borders(Borders::TOP).title(format!(
        " Top processes by {sort} ({count} running; s to sort, enter to stop one) "
    )))
    .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut state = TableState::default().with_selected(Some(app.selected()));
    frame.render_stateful_widget(table, area, &mut state);
}

fn draw_catalog(frame: &mut Frame, area: Rect, app: &App) {
    let [list_area, detail] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(5)]).areas(area);
    let items: Vec<ListItem> = app
        .scripts
        .iter()
        .map(|(id, s)| {
            ListItem::new(Line::from(vec![
                Span::styled(format!("{:<7}", s.risk.to_string()), risk_style(s.risk)),
                Span::raw(format!("{:<20} {}", id.as_str(), clean(&s.title))),
            ]))
        })
        .collect();
    let mut state = ListState::default().with_selected(Some(app.selected()));
    frame.render_stateful_widget(
        List::new(items)
            .block(
                Block::new()
                    .borders(Borders::TOP)
                    .title(format!(" Catalog: {} ", clean(&app.catalog_state))),
            )
            .highlight_style(Style::new().add_modifier(Modifier::REVERSED)),
        list_area,
        &mut state,
    );
    if let Some((_, s)) = app.scripts.get(app.selected()) {
        let params: Vec<&String> = s.params.keys().collect();
        let text = vec![
            Line::from(clean(&s.description)),
            Line::styled(
                format!(
                    "runs: {} {}   params: {:?}   timeout {} s",
                    clean(&s.program),
                    clean(&s.args.join(" ")),
                    params,
                    s.timeout_secs
                ),
                Style::new().fg(Color::Gray),
            ),
        ];
        frame.render_widget(
            Paragraph::new(text)
                .wrap(Wrap { trim: true })
                .block(Block::new().borders(Borders::TOP)),
            detail,
        );
    }
}

fn draw_runs(frame: &mut Frame, area: Rect, app: &App) {
    let [list_area, output] =
        Layout::vertical([Constraint::Length(5), Constraint::Min(3)]).areas(area);
    let items: Vec<ListItem> = app
        .runs
        .iter()
        .map(|r| {
            let style = match (&r.refused, r.success, &r.status) {
                (Some(_), _, _) => Style::new().fg(Color::Yellow),
                (None, true, Some(_)) => Style::new().fg(Color::Green),
                (None, false, Some(_)) => Style::new().fg(Color::Red),
                _ => Style::new(),
            };
            ListItem::new(Line::styled(
                format!(
                    "run {:<3} {:<18} {}",
                    r.id,
                    clean(&r.script),
                    clean(&r.state())
                ),
                style,
            ))
        })
        .collect();
    let mut state = ListState::default().with_selected(Some(app.selected()));
    frame.render_stateful_widget(
        List::new(items)
            .block(Block::new().borders(Borders::TOP).title(" Runs "))
            .highlight_style(Style::new().add_modifier(Modifier::REVERSED)),
        list_area,
        &mut state,
    );
    let Some(run) = app.current_run() else {
        frame.render_widget(
            Paragraph::new(
                "no runs yet: pick a script in the Catalog view, or a finding's suggestion",
            ),
            output,
        );
        return;
    };
    let elapsed = run
        .finished
        .unwrap_or_else(std::time::Instant::now)
        .duration_since(run.started.unwrap_or(run.requested));
    let title = format!(
        " run {} {}: {}  {:.1} s  {} ",
        run.id,
        clean(&run.script),
        clean(&run.state()),
        elapsed.as_secs_f64(),
        human_bytes(run.bytes)
    );
    let lines: Vec<&str> = run.all_lines().collect();
    let height = output.height.saturating_sub(1) as usize;
    let shown: Vec<Line> = lines[lines.len().saturating_sub(height)..]
        .iter()
        .map(|l| Line::raw(clean(l)))
        .collect();
    frame.render_widget(
        Paragraph::new(shown).block(Block::new().borders(Borders::TOP).title(title)),
        output,
    );
}

fn draw_talk(frame: &mut Frame, area: Rect, app: &App) {
    let mut lines = vec![Line::styled(
        "m: show the person a message   a: ask a question   f: fetch a file (PATH [LOCAL])",
        Style::new().fg(Color::DarkGray),
    )];
    if app.talk.is_empty() {
        lines.push(Line::raw("nothing said yet"));
    }
    for t in &app.talk {
        if let Some(fetch) = &t.fetch {
            lines.extend(fetch_lines(t, fetch));
            continue;
        }
        let (said, reply, style) = match (&t.reply, t.question) {
            (None, true) => (
                "you asked",
                "waiting for the answer".to_string(),
                Style::new(),
            ),
            (None, false) => ("you said", "sending".to_string(), Style::new()),
            (Some(Ok(answer)), true) => (
                "you asked",
                format!("answer: {}", clean(answer)),
                Style::new().fg(Color::Green),
            ),
            (Some(Ok(_)), false) => (
                "you said",
                "shown".to_string(),
                Style::new().fg(Color::Green),
            ),
            (Some(Err(why)), question) => (
                if question { "you asked" } else { "you said" },
                format!("no answer: {}", clean(why)),
                Style::new().fg(Color::Yellow),
            ),
        };
        lines.push(Line::raw(format!("{:>3} {said}: {}", t.id, clean(&t.text))));
        lines.push(Line::styled(format!("      {reply}"), style));
    }
    let height = area.height.saturating_sub(1) as usize;
    let skip = lines.len().saturating_sub(height);
    let shown: Vec<Line> = lines.into_iter().skip(skip).collect();
    frame.render_widget(
        Paragraph::new(shown)
            .wrap(Wrap { trim: false })
            .block(Block::new().borders(Borders::TOP).title(" Talk ")),
        area,
    );
}

/// A file asked for: what and where to, then how it stands.
fn fetch_lines(t: &TalkLine, fetch: &FetchLine) -> Vec<Line<'static>> {
    let (state, style) = match (&t.reply, &fetch.kept, fetch.size) {
        (Some(Err(why)), _, _) => (
            format!("not kept: {}", clean(why)),
            Style::new().fg(Color::Yellow),
        ),
        (Some(Ok(_)), Some(k), _) => (
            format!(
                "kept as {} ({} bytes)\n      SHA-256 {}",
                clean(&k.local),
                k.size,
                clean(&k.sha256)
            ),
            Style::new().fg(Color::Green),
        ),
        (_, _, Some(size)) => {
            let percent = fetch
                .received
                .saturating_mul(100)
                .checked_div(size)
                .unwrap_or(100);
            (
                format!(
                    "receiving: {} of {} ({percent}%)",
                    human_bytes(fetch.received),
                    human_bytes(size)
                ),
                Style::new(),
            )
        }
        _ => ("waiting for the person to agree".to_string(), Style::new()),
    };
    let mut lines = vec![Line::raw(format!(
        "{:>3} you asked for the file {} (to keep as {})",
        t.id,
        clean(&t.text),
        clean(&fetch.local)
    ))];
    lines.extend(
        state
            .lines()
            .map(|l| Line::styled(format!("      {l}"), style)),
    );
    lines
}

fn draw_prompt(frame: &mut Frame, app: &App, prompt: &Prompt) {
    let area = frame.area();
    let width = area.width.saturating_sub(4).min(76);
    let height = area.height.min(7);
    let top = area.y + (area.height - height) / 3;
    // Clamped to the frame: drawing outside the buffer would panic.
    let rect = Rect::new(area.x + (area.width - width) / 2, top, width, height).intersection(area);
    frame.render_widget(Clear, rect);
    let text = match prompt {
        Prompt::Params { script, input } => vec![
            Line::from(format!("parameters for {} (KEY=VALUE ...):", clean(script))),
            Line::styled(
                format!("> {}_", clean(input)),
                Style::new().add_modifier(Modifier::BOLD),
            ),
            Line::styled(
                "enter to continue, esc to cancel",
                Style::new().fg(Color::DarkGray),
            ),
        ],
        Prompt::Confirm { script, params } => {
            let risk = app.script(script).map(|s| s.risk);
            let shown: Vec<String> = params
                .iter()
                .map(|(k, v)| format!("{}={:?}", clean(k), clean(v)))
                .collect();
            vec![
                Line::from(vec![
                    Span::raw(format!("run {} {}", clean(script), shown.join(" "))),
                    Span::raw("  risk: "),
                    Span::styled(
                        risk.map(|r| r.to_string()).unwrap_or_default(),
                        risk.map(risk_style).unwrap_or_default(),
                    ),
                ]),
                Line::from("the person will be asked to approve it on their screen"),
                Line::styled(
                    "y or enter to send, n or esc to cancel",
                    Style::new().fg(Color::DarkGray),
                ),
            ]
        }
        Prompt::Fetch { input } => vec![
            Line::from(
                "the file's full path on the person's machine, then the name to keep it as here \
                 if not its own (PATH [LOCAL]); the person must agree:",
            ),
            Line::styled(
                format!("> {}_", clean(input)),
                Style::new().add_modifier(Modifier::BOLD),
            ),
            Line::styled(
                "enter to ask, esc to cancel",
                Style::new().fg(Color::DarkGray),
            ),
        ],
        Prompt::Say { input } | Prompt::Ask { input } => vec![
            Line::from(if matches!(prompt, Prompt::Ask { .. }) {
                "the person sees your question and types an answer:"
            } else {
                "the person sees this message on their screen:"
            }),
            Line::styled(
                format!("> {}_", clean(input)),
                Style::new().add_modifier(Modifier::BOLD),
            ),
            Line::styled(
                "enter to send, esc to cancel",
                Style::new().fg(Color::DarkGray),
            ),
        ],
    };
    let title = match prompt {
        Prompt::Say { .. } => " Message for the person ",
        Prompt::Ask { .. } => " Question for the person ",
        Prompt::Fetch { .. } => " Fetch a file ",
        _ => " Run a script ",
    };
    frame.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: true })
            .block(Block::bordered().title(title)),
        rect,
    );
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use sprijin_proto::message::diag::{DiagReport, Evidence, Finding, Severity};
    use sprijin_proto::message::session::AgentMsg;

    use super::*;
    use crate::report::SessionRecord;
    use crate::ui::app::Action;

    fn app() -> App {
        let record = SessionRecord {
            started: SystemTime::now(),
            technician: "Ana".into(),
            relay: "relay:7420".into(),
            nameplate: "7".into(),
            host: "printer-room".into(),
            verification: "otter-lamp-river-maple".into(),
            catalog: None,
            latest: None,
            runs: Vec::new(),
            conversation: Vec::new(),
            log: None,
            audit_head: tokio::sync::watch::channel(None).1,
            path: tokio::sync::watch::channel(Vec::new()).1,
            path_logged: 0,
        };
        let mut app = App::new(record, Vec::new());
        let mut report = DiagReport::default();
        report.snapshot.host.name = "printer-room".into();
        report.findings.push(Finding {
            id: "disk-nearly-full".into(),
            severity: Severity::Critical,
            title: "Disk / is 98% full".into(),
            evidence: vec![Evidence {
                label: "free".into(),
                value: "1.2 GiB".into(),
            }],
            subject: Some("/".into()),
            script: Some("largest-folders".into()),
            params: Vec::new(),
        });
        app.on_agent(AgentMsg::Diagnostics {
            id: 1,
            report: Box::new(report),
        });
        app
    }

    fn render(app: &App, width: u16, height: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|f| draw(f, app)).unwrap();
        let buffer = terminal.backend().buffer().clone();
        (0..height)
            .map(|y| {
                (0..width)
                    .map(|x| buffer[(x, y)].symbol().to_string())
                    .collect::<String>()
                    + "\n"
            })
            .collect()
    }

    #[test]
    fn overview_fits_80_by_24_with_host_words_and_findings() {
        let screen = render(&app(), 80, 24);
        assert!(screen.contains("printer-room"), "{screen}");
        assert!(screen.contains("otter-lamp-river-maple"), "{screen}");
        assert!(screen.contains("Disk / is 98% full"), "{screen}");
        assert!(screen.contains("suggested: largest-folders"), "{screen}");
        assert!(screen.contains("q quit"), "{screen}");
    }

    #[test]
    fn a_tiny_terminal_does_not_panic() {
        let mut app = app();
        for view in View::ALL {
            app.show(view);
            render(&app, 20, 8);
        }
        app.prompt = Some(Prompt::Confirm {
            script: "largest-folders".into(),
            params: vec![("path".into(), "/".into())],
        });
        render(&app, 20, 5);
        render(&app, 3, 3);
    }

    #[test]
    fn the_end_of_the_session_is_said_plainly() {
        let mut app = app();
        app.on_ended("the person ended the session".into());
        let screen = render(&app, 80, 24);
        assert!(
            screen.contains("the person ended the session; press q to leave"),
            "{screen}"
        );
        assert!(screen.contains("session ended"), "{screen}");
    }

    #[test]
    fn a_fetch_shows_the_wait_the_progress_and_the_kept_file() {
        use crate::fetch::Receiving;
        use sha2::{Digest, Sha256};

        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().join("syslog");
        let mut app = app();
        app.fetch_requested(
            7,
            "/var/log/syslog".into(),
            Receiving::create(&local).unwrap(),
        );
        let screen = render(&app, 200, 30);
        assert!(screen.contains("2 Findings"), "{screen}");
        assert!(
            screen.contains(&format!(
                "7 you asked for the file /var/log/syslog (to keep as {})",
                local.display()
            )),
            "{screen}"
        );
        assert!(
            screen.contains("waiting for the person to agree"),
            "{screen}"
        );
        assert!(screen.contains("f fetch a file"), "{screen}");

        let content = vec![b'x'; 2048];
        app.on_agent(AgentMsg::FileStart {
            id: 7,
            path: "/var/log/syslog".into(),
            size: 2048,
        });
        app.on_agent(AgentMsg::FileChunk {
            id: 7,
            data: content[..1024].to_vec(),
        });
        let screen = render(&app, 200, 30);
        assert!(
            screen.contains("receiving: 1.0 KiB of 2.0 KiB (50%)"),
            "{screen}"
        );
        assert!(!local.exists(), "kept only once it checks out");

        app.on_agent(AgentMsg::FileChunk {
            id: 7,
            data: content[1024..].to_vec(),
        });
        let digest = hex::encode(Sha256::digest(&content));
        app.on_agent(AgentMsg::FileEnd {
            id: 7,
            size: 2048,
            sha256: digest.clone(),
        });
        let screen = render(&app, 200, 30);
        assert!(
            screen.contains(&format!("kept as {} (2048 bytes)", local.display())),
            "{screen}"
        );
        assert!(screen.contains(&format!("SHA-256 {digest}")), "{screen}");
        assert_eq!(std::fs::read(&local).unwrap(), content);
        assert_eq!(app.record.conversation.len(), 1);
        // Narrow, the line wraps rather than being cut.
        let screen = render(&app, 80, 24);
        assert!(screen.contains("SHA-256"), "{screen}");
    }

    #[test]
    fn a_refused_or_damaged_fetch_says_why_and_keeps_nothing() {
        use crate::fetch::Receiving;

        let dir = tempfile::tempdir().unwrap();
        let mut app = app();
        let refused = dir.path().join("refused");
        app.fetch_requested(
            8,
            "/etc/shadow".into(),
            Receiving::create(&refused).unwrap(),
        );
        app.on_agent(AgentMsg::Refused {
            id: 8,
            reason: "the person said no".into(),
        });
        let damaged = dir.path().join("damaged");
        app.fetch_requested(9, "/tmp/a".into(), Receiving::create(&damaged).unwrap());
        app.on_agent(AgentMsg::FileStart {
            id: 9,
            path: "/tmp/a".into(),
            size: 3,
        });
        app.on_agent(AgentMsg::FileChunk {
            id: 9,
            data: b"abc".to_vec(),
        });
        app.on_agent(AgentMsg::FileEnd {
            id: 9,
            size: 3,
            sha256: "00".into(),
        });
        let screen = render(&app, 200, 30);
        assert!(
            screen.contains("not kept: refused: the person said no"),
            "{screen}"
        );
        assert!(
            screen.contains("not kept: the file's SHA-256 is"),
            "{screen}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert_eq!(app.record.conversation.len(), 2);

        // A file still on its way when the session ends is not kept.
        let cut = dir.path().join("cut");
        app.fetch_requested(10, "/tmp/b".into(), Receiving::create(&cut).unwrap());
        app.on_agent(AgentMsg::FileStart {
            id: 10,
            path: "/tmp/b".into(),
            size: 3,
        });
        app.on_ended("the person ended the session".into());
        let screen = render(&app, 200, 30);
        assert!(
            screen.contains("not kept: the session ended before the whole file arrived"),
            "{screen}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn the_fetch_prompt_reads_path_and_local_name_like_the_line_console() {
        let mut app = app();
        app.begin_fetch();
        for c in "'/tmp/a b.txt' here.txt".chars() {
            app.type_char(c);
        }
        let screen = render(&app, 80, 24);
        assert!(screen.contains("Fetch a file"), "{screen}");
        assert!(screen.contains("PATH [LOCAL]"), "{screen}");
        assert_eq!(
            app.submit_prompt(),
            Some(Action::Fetch {
                path: "/tmp/a b.txt".into(),
                local: "here.txt".into(),
            })
        );
        app.begin_fetch();
        for c in "/var/log/syslog".chars() {
            app.type_char(c);
        }
        assert_eq!(
            app.submit_prompt(),
            Some(Action::Fetch {
                path: "/var/log/syslog".into(),
                local: "syslog".into(),
            })
        );
        // Bad input keeps the prompt open with what was typed.
        app.begin_fetch();
        for c in "/a b c".chars() {
            app.type_char(c);
        }
        assert_eq!(app.submit_prompt(), None);
        assert_eq!(app.status, "usage: fetch PATH [LOCAL]");
        assert_eq!(
            app.prompt,
            Some(Prompt::Fetch {
                input: "/a b c".into()
            })
        );
    }

    /// A screen's cells that hold something unsafe to send to a terminal.
    fn unsafe_cells(app: &App, width: u16, height: u16) -> Vec<String> {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|f| draw(f, app)).unwrap();
        terminal
            .backend()
            .buffer()
            .content
            .iter()
            .map(|c| c.symbol().to_string())
            .filter(|s| sprijin_proto::text::clean_line(s) != *s)
            .collect()
    }

    #[test]
    fn escapes_from_the_other_side_never_reach_the_screen() {
        use sprijin_proto::message::diag::ProcessInfo;
        use sprijin_proto::message::script::{OutStream, RunEnd, RunStatus};

        let evil = "x\x1b]0;pwned\x07\x1b[2J\u{202E}y\rz";
        let mut app = app();
        app.host = evil.into();
        let mut report = DiagReport::default();
        report.snapshot.host.os_name = evil.into();
        report.findings.push(Finding {
            id: "evil".into(),
            severity: Severity::Critical,
            title: evil.into(),
            evidence: vec![Evidence {
                label: evil.into(),
                value: evil.into(),
            }],
            subject: Some(evil.into()),
            script: Some(evil.into()),
            params: Vec::new(),
        });
        report.snapshot.processes.top_cpu.push(ProcessInfo {
            pid: 7,
            name: evil.into(),
            command: evil.into(),
            user: Some(evil.into()),
            ..ProcessInfo::default()
        });
        app.on_agent(AgentMsg::Diagnostics {
            id: 2,
            report: Box::new(report),
        });
        app.run_requested(3, "fix".into(), &[]);
        app.on_agent(AgentMsg::RunStarted {
            id: 3,
            program: "sh".into(),
            args: vec![],
        });
        // An escape and a two-byte character cut between two chunks.
        app.on_agent(AgentMsg::Output {
            id: 3,
            stream: OutStream::Stdout,
            data: b"out \x1b]0;pwned\x07\x1b[2J\ttab \xc8".to_vec(),
        });
        app.on_agent(AgentMsg::Output {
            id: 3,
            stream: OutStream::Stdout,
            data: b"\x99 end\r\n".to_vec(),
        });
        app.on_agent(AgentMsg::RunEnded {
            id: 3,
            end: RunEnd {
                status: RunStatus::FailedToStart {
                    reason: evil.into(),
                },
                duration_ms: 1,
                bytes: 1,
                dropped: 0,
                output_sha256: String::new(),
            },
        });
        app.talk_requested(4, true, evil.into());
        app.on_agent(AgentMsg::Answer {
            id: 4,
            text: evil.into(),
        });
        app.talk_requested(5, false, evil.into());
        app.on_agent(AgentMsg::Refused {
            id: 5,
            reason: evil.into(),
        });
        let dir = tempfile::tempdir().unwrap();
        app.fetch_requested(
            6,
            evil.into(),
            crate::fetch::Receiving::create(&dir.path().join("f")).unwrap(),
        );
        app.on_agent(AgentMsg::FileStart {
            id: 6,
            path: evil.into(),
            size: 0,
        });
        app.on_agent(AgentMsg::FileEnd {
            id: 6,
            size: 0,
            sha256: evil.into(),
        });
        app.prompt = Some(Prompt::Ask { input: evil.into() });
        for view in View::ALL {
            app.show(view);
            assert_eq!(
                unsafe_cells(&app, 120, 30),
                Vec::<String>::new(),
                "{view:?}"
            );
        }
        app.prompt = None;
        app.show(View::Talk);
        let screen = render(&app, 120, 30);
        assert!(screen.contains("answer: x�]0;pwned��[2J�y�z"), "{screen}");
        assert!(
            screen.contains("not kept: the file's SHA-256 is"),
            "{screen}"
        );
        assert_eq!(
            app.record.conversation.len(),
            2,
            "only the question and the fetch"
        );
        app.show(View::Runs);
        let screen = render(&app, 120, 30);
        assert!(
            screen.contains("out �]0;pwned��[2J      tab ș end"),
            "{screen}"
        );
        app.show(View::Overview);
        let screen = render(&app, 120, 30);
        assert!(screen.contains("x�]0;pwned��[2J�y�z"), "{screen}");
    }
}
