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

use super::app::{App, Prompt, Sort, View};

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
            Line::styled(KEYS, Style::new().fg(Color::DarkGray)),
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
        None => Span::styled("connected", Style::new().fg(Color::Green)),
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
        "m: show the person a message   a: ask the person a question",
        Style::new().fg(Color::DarkGray),
    )];
    if app.talk.is_empty() {
        lines.push(Line::raw("nothing said yet"));
    }
    for t in &app.talk {
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
        assert_eq!(app.record.conversation.len(), 1, "only the question");
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
