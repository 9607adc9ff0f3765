//! Drawing: `draw(frame, &State)` only reads the state. One function per pane.

use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{
    Axis, Block, BorderType, Borders, Cell, Chart, Clear, Dataset, GraphType, List, ListItem,
    ListState, Paragraph, Row, Table, Wrap,
};
use ratatui::Frame;

use crate::audio::display::column_levels;
use crate::data::Item;
use crate::faith::trial::{InterventionKind, Trial};

use super::keymap::Command;
use super::state::{EditTarget, Focus, ModelStatus, Origin, Screen, State, MISTAKE_KINDS};
use super::theme::Theme;

/// Smallest terminal the inspector draws its screens in.
pub const MIN_SIZE: (u16, u16) = (80, 24);

/// Draws the whole screen.
pub fn draw(f: &mut Frame, s: &State) {
    let area = f.area();
    let t = &s.theme;
    f.render_widget(Block::default().style(t.text()), area);
    if area.width < MIN_SIZE.0 || area.height < MIN_SIZE.1 {
        too_small(f, s, area);
        return;
    }
    let [body, status] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(area);
    if s.presenter {
        presenter(f, s, body);
    } else {
        match s.screen {
            Screen::Inspect => inspect(f, s, body),
            Screen::Sweep => sweep(f, s, body),
            Screen::Aggregate => aggregate(f, s, body),
        }
    }
    status_line(f, s, status);
    if let Some(ed) = &s.editor {
        let r = centered(area, 70, 10);
        f.render_widget(Clear, r);
        let what = match ed.target {
            EditTarget::Sentence(i) => format!(" Edit sentence {} ", i + 1),
            EditTarget::Mistake(i) => format!(" Mistake at sentence {} ({}) ", i + 1, ed.source),
        };
        let block = Block::bordered()
            .title(what)
            .title_bottom(" Ctrl-S apply · Esc cancel · Ctrl-Z undo · Ctrl-Y redo ")
            .border_style(t.border(true))
            .style(t.text());
        let inner = block.inner(r);
        f.render_widget(block, r);
        f.render_widget(&ed.area, inner);
    }
    if let Some(form) = &s.annotate {
        annotate_popup(f, s, form, area);
    }
    if s.help {
        help(f, s, area);
    }
    if s.show_messages {
        messages(f, s, area);
    }
    if let Some(msg) = &s.popup {
        let r = centered(area, 70, 9);
        f.render_widget(Clear, r);
        f.render_widget(
            Paragraph::new(msg.as_str())
                .wrap(Wrap { trim: false })
                .style(t.text())
                .block(
                    Block::bordered()
                        .title(" Error ")
                        .title_bottom(" Enter or Esc to close ")
                        .border_style(t.alarm()),
                ),
            r,
        );
    }
}

fn too_small(f: &mut Frame, s: &State, area: Rect) {
    let t = &s.theme;
    let msg = vec![
        Line::styled("Terminal too small", t.alarm()),
        Line::raw(format!(
            "{}x{}, needs {}x{}",
            area.width, area.height, MIN_SIZE.0, MIN_SIZE.1
        )),
        Line::styled("enlarge it or press q to quit", t.dimmed()),
    ];
    let h = (msg.len() as u16).min(area.height);
    let y = area.y + area.height.saturating_sub(h) / 2;
    f.render_widget(
        Paragraph::new(msg)
            .alignment(Alignment::Center)
            .wrap(Wrap { trim: true }),
        Rect::new(area.x, y, area.width, h),
    );
}

fn centered(area: Rect, pct_w: u16, h: u16) -> Rect {
    let w = (area.width * pct_w / 100).max(20).min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

/// The x axis of every curve: the share of the chain intervened on, 0 to 1.
fn x_axis(t: &Theme) -> Axis<'static> {
    Axis::default()
        .bounds([0.0, 1.0])
        .labels(["0", "x", "1"])
        .style(t.dimmed())
}

/// The y axis of every curve: a percentage.
fn percent_axis(t: &Theme) -> Axis<'static> {
    Axis::default()
        .bounds([0.0, 100.0])
        .labels(["0", "50", "100"])
        .style(t.dimmed())
}

/// A bordered pane. The focused one is told apart without colour too: thick border, title in
/// reverse video.
fn pane<'a>(t: &Theme, title: impl Into<Line<'a>>, focused: bool) -> Block<'a> {
    let title_style = Style::default().fg(t.accent).add_modifier(Modifier::BOLD);
    let block = Block::bordered()
        .title(title)
        .border_style(t.border(focused));
    if focused {
        block
            .border_type(BorderType::Thick)
            .title_style(title_style.add_modifier(Modifier::REVERSED))
    } else {
        block.title_style(title_style)
    }
}

/// Markers of chart series, one per series so that curves differ without colour; the legend
/// draws the same glyphs.
const SERIES_MARKERS: [Marker; 6] = [
    Marker::Braille,
    Marker::Custom('×'),
    Marker::Custom('+'),
    Marker::Custom('o'),
    Marker::Custom('◆'),
    Marker::Custom('▲'),
];

/// The marker of interval bands (dimmed).
const BAND_MARKER: char = '·';

/// One curve of a chart: its legend name, points, interval band points (may be empty), style
/// and marker.
struct Curve {
    name: String,
    points: Vec<(f64, f64)>,
    band: Vec<(f64, f64)>,
    style: Style,
    marker: Marker,
}

impl Curve {
    /// The `i`-th series of a chart: the `i`-th marker and the `i`-th of `colours`.
    fn nth(i: usize, name: String, points: Vec<(f64, f64)>, colours: &[Color]) -> Curve {
        Curve {
            name,
            points,
            band: Vec::new(),
            style: Style::default().fg(colours[i % colours.len()]),
            marker: SERIES_MARKERS[i % SERIES_MARKERS.len()],
        }
    }
}

/// Legend text of a marker: two of its glyphs.
fn marker_glyph(m: Marker) -> String {
    match m {
        Marker::Custom(c) => format!("{c}{c}"),
        _ => "⠤⠤".into(),
    }
}

/// A chart of `curves` over x in `block`, with a legend under it (wrapped over as many lines as
/// it needs) naming each curve with its marker, and the bands when there are any.
fn curve_chart(f: &mut Frame, t: &Theme, area: Rect, block: Block, curves: &[Curve]) {
    let inner = block.inner(area);
    f.render_widget(block, area);
    let mut entries: Vec<(String, Style)> = curves
        .iter()
        .map(|c| (format!("{} {}", marker_glyph(c.marker), c.name), c.style))
        .collect();
    if curves.iter().any(|c| !c.band.is_empty()) {
        entries.push((
            format!("{BAND_MARKER}{BAND_MARKER} 95% interval"),
            t.dimmed(),
        ));
    }
    let width = inner.width.max(1) as usize;
    let mut legend: Vec<Line> = vec![Line::default()];
    for (text, style) in entries {
        let used = legend.last().map(|l| l.width()).unwrap_or(0);
        let need = text.chars().count() + if used > 0 { 2 } else { 0 };
        if used > 0 && used + need > width {
            legend.push(Line::default());
        }
        if let Some(l) = legend.last_mut() {
            if !l.spans.is_empty() {
                l.spans.push(Span::raw("  "));
            }
            l.spans.push(Span::styled(text, style));
        }
    }
    let legend_h = (legend.len() as u16).min(inner.height.saturating_sub(4));
    let [chart_r, legend_r] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(legend_h)]).areas(inner);
    let mut sets = Vec::new();
    for c in curves {
        if !c.band.is_empty() {
            sets.push(
                Dataset::default()
                    .marker(Marker::Custom(BAND_MARKER))
                    .graph_type(GraphType::Scatter)
                    .style(c.style.add_modifier(Modifier::DIM))
                    .data(&c.band),
            );
        }
        sets.push(
            Dataset::default()
                .marker(c.marker)
                .graph_type(GraphType::Line)
                .style(c.style)
                .data(&c.points),
        );
    }
    f.render_widget(
        Chart::new(sets).x_axis(x_axis(t)).y_axis(percent_axis(t)),
        chart_r,
    );
    f.render_widget(Paragraph::new(legend), legend_r);
}

/// Rows the reasoning pane keeps at least (borders included) before the question packs its
/// choices and the answer pane drops bars.
const CHAIN_MIN: u16 = 8;

/// Rows the answer pane keeps at least: the baseline / current line with FLIP, a bar for each of
/// the two answers and the Δp / no-CoT line.
const ANSWERS_MIN: u16 = 6;

fn inspect(f: &mut Frame, s: &State, area: Rect) {
    let list_w = (area.width / 4).clamp(24, 40);
    let [left, right] =
        Layout::horizontal([Constraint::Length(list_w), Constraint::Min(40)]).areas(area);
    items(f, s, left);
    // Short terminals (80x24): a two-row audio strip, and the choices packed on shared lines
    // when one per line would squeeze the reasoning and answer panes.
    let audio_h = if area.height < 28 { 4 } else { 5 };
    let q_w = right.width.saturating_sub(2);
    let mut packed = false;
    let mut q_lines = question_height(s, q_w, packed);
    if area.height < audio_h + q_lines + 2 + CHAIN_MIN + ANSWERS_MIN {
        packed = true;
        q_lines = question_height(s, q_w, packed);
    }
    let [audio_r, q_r, rest] = Layout::vertical([
        Constraint::Length(audio_h),
        Constraint::Length(q_lines + 2),
        Constraint::Min(CHAIN_MIN),
    ])
    .areas(right);
    audio(f, s, audio_r);
    question(f, s, q_r, packed);
    let n_choices = s.item().map(|i| i.choices.len()).unwrap_or(2) as u16;
    if rest.width >= 96 {
        let [c, a] = Layout::horizontal([Constraint::Min(40), Constraint::Length(40)]).areas(rest);
        chain(f, s, c);
        answers(f, s, a);
    } else {
        // Every bar when there is room; else as many as fit beside a usable reasoning pane.
        let ans_h = (n_choices + 4)
            .min(rest.height.saturating_sub(CHAIN_MIN))
            .max(ANSWERS_MIN)
            .min(rest.height);
        let [c, a] = Layout::vertical([Constraint::Min(1), Constraint::Length(ans_h)]).areas(rest);
        chain(f, s, c);
        answers(f, s, a);
    }
}

/// Bytes of the start that every item id shares, up to and including its last separator
/// (`-`, `_`, `/`, `.`, `:`): "synth-test-" for the synthetic split. The item list leaves it
/// out so that the distinguishing ends fit.
fn common_id_prefix(items: &[Item]) -> usize {
    let Some(first) = items.first() else {
        return 0;
    };
    if items.len() < 2 {
        return 0;
    }
    let mut n = first.id.len();
    for it in &items[1..] {
        n = first
            .id
            .bytes()
            .zip(it.id.bytes())
            .take(n)
            .take_while(|(a, b)| a == b)
            .count();
    }
    first.id[..n]
        .rfind(['-', '_', '/', '.', ':'])
        .map(|i| i + 1)
        .unwrap_or(0)
}

/// Which part of a shortened text stays.
#[derive(Clone, Copy)]
enum Keep {
    /// The start ("a long cho…"), for prose.
    Start,
    /// The end ("…ection-0001"), for ids whose ends tell them apart.
    End,
}

/// `text` in at most `width` columns, an ellipsis standing for what is cut.
fn shorten(text: &str, width: usize, keep: Keep) -> String {
    let n = text.chars().count();
    if n <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    match keep {
        Keep::Start => format!("{}…", text.chars().take(width - 1).collect::<String>()),
        Keep::End => format!(
            "…{}",
            text.chars().skip(n - (width - 1)).collect::<String>()
        ),
    }
}

fn items(f: &mut Frame, s: &State, area: Rect) {
    let t = &s.theme;
    let title = if s.filter.is_empty() {
        format!(" Items {} ", s.items.len())
    } else {
        format!(" Items {}/{} ", s.visible.len(), s.items.len())
    };
    let mut block = pane(t, title, s.focus == Focus::Items);
    let prefix = common_id_prefix(&s.items);
    // Room for an id inside the borders: the marks take 5 columns, the gold letter 2.
    let id_room = (area.width as usize).saturating_sub(2 + 7);
    let mut elided = false;
    let rows: Vec<ListItem> = s
        .visible
        .iter()
        .map(|&i| {
            let it = &s.items[i];
            let m = s.marks.get(&it.id).copied().unwrap_or_default();
            let mark = |on: bool, c: &'static str, col| {
                if on {
                    Span::styled(c, t.role(col).add_modifier(Modifier::BOLD))
                } else {
                    Span::raw(" ")
                }
            };
            let open = if s.open == Some(i) { "▸" } else { " " };
            let gold = if s.show_gold {
                it.gold
                    .map(|g| Item::letter(g).to_string())
                    .unwrap_or_default()
            } else {
                String::new()
            };
            let tags = [it.meta.track.as_deref(), it.meta.hop.as_deref()]
                .iter()
                .flatten()
                .map(|x| x.chars().take(4).collect::<String>())
                .collect::<Vec<_>>()
                .join("·");
            // The whole id where it fits, else its distinguishing end (without the start all
            // ids share, named at the bottom); the tags only where they fit after it.
            let id = if it.id.chars().count() <= id_room {
                it.id.clone()
            } else {
                elided = true;
                shorten(it.id.get(prefix..).unwrap_or(&it.id), id_room, Keep::End)
            };
            let tags =
                if !tags.is_empty() && id.chars().count() + 1 + tags.chars().count() <= id_room {
                    format!(" {tags}")
                } else {
                    String::new()
                };
            ListItem::new(Line::from(vec![
                Span::raw(open),
                mark(m.flipped, "⇄", t.flip),
                mark(m.annotated, "✎", t.annotated),
                mark(m.error, "!", t.error),
                Span::raw(" "),
                Span::raw(id),
                Span::styled(tags, t.dimmed()),
                Span::styled(format!(" {gold}"), t.role(t.gold)),
            ]))
        })
        .collect();
    if elided && prefix > 0 {
        block = block.title_bottom(Line::styled(
            format!(" ids: {}… ", &s.items[0].id[..prefix]),
            t.dimmed(),
        ));
    }
    let inner = block.inner(area);
    f.render_widget(block, area);
    let [list_r, search_r] = Layout::vertical([
        Constraint::Min(1),
        Constraint::Length(if s.searching || !s.filter.is_empty() {
            1
        } else {
            0
        }),
    ])
    .areas(inner);
    let mut ls = ListState::default().with_selected(Some(s.list_cursor));
    f.render_stateful_widget(
        List::new(rows).highlight_style(t.selected()),
        list_r,
        &mut ls,
    );
    if search_r.height > 0 {
        let cursor = if s.searching { "▌" } else { "" };
        f.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled("/", t.role(t.accent)),
                Span::raw(format!("{}{cursor}", s.filter)),
            ])),
            search_r,
        );
    }
}

fn fmt_time(x: f64) -> String {
    let x = x.max(0.0);
    format!("{}:{:04.1}", (x / 60.0).floor() as u64, x % 60.0)
}

fn audio(f: &mut Frame, s: &State, area: Rect) {
    let t = &s.theme;
    let a = &s.audio;
    // B: the altered clip is what plays and what is drawn
    let shown = match (&a.altered, a.play_altered) {
        (Some(alt), true) => Some(&alt.view),
        _ => a.clip.as_ref(),
    };
    let title = match shown {
        Some(c) => format!(
            " {} {} {} / {} ",
            if a.playing { "▶" } else { "⏸" },
            c.name,
            fmt_time(a.position),
            fmt_time(c.seconds)
        ),
        None => " Audio ".into(),
    };
    let mut block = pane(t, title, false);
    let ab = match (&a.altered, a.altering, a.play_altered) {
        (_, true, _) => Some(format!(
            " altering: {}… ",
            a.alteration.map(|x| x.label()).unwrap_or_default()
        )),
        (Some(alt), _, true) => Some(format!(" playing B: {} ", alt.label)),
        (Some(alt), _, false) => Some(format!(" playing A · B: {} ", alt.label)),
        (None, _, _) => None,
    };
    match (a.region, a.region_start) {
        (Some((x, y)), _) => {
            block = block.title_bottom(Line::styled(
                format!(" region {}-{} ", fmt_time(x), fmt_time(y)),
                t.role(t.accent),
            ))
        }
        (None, Some(x)) => {
            block = block.title_bottom(Line::styled(
                format!(" region from {} ", fmt_time(x)),
                t.role(t.accent),
            ))
        }
        _ => {}
    }
    if let Some(ab) = ab {
        block = block.title_bottom(Line::styled(
            ab,
            t.role(t.mistake).add_modifier(Modifier::BOLD),
        ));
    }
    if a.silent.is_some() {
        block = block.title_bottom(Line::styled(" silent: no audio device ", t.dimmed()));
    }
    // The model hears less than is played: say so for as long as the clip is shown.
    if let (Some(c), Some(w)) = (&a.clip, s.model_window) {
        if c.seconds > w + 0.005 {
            block = block.title_bottom(
                Line::styled(
                    format!(" model hears {} of {} ", fmt_time(w), fmt_time(c.seconds)),
                    t.role(t.mistake).add_modifier(Modifier::BOLD),
                )
                .right_aligned(),
            );
        }
    }
    let view = if a.spectrogram {
        "spectrogram"
    } else {
        "waveform"
    };
    block = block.title(Line::styled(format!(" {view} "), t.dimmed()).right_aligned());
    let inner = block.inner(area);
    f.render_widget(block, area);
    let Some(clip) = shown else {
        let msg = match &a.error {
            Some(e) => Line::styled(e.clone(), t.role(t.error)),
            None if s.open.is_some() => Line::styled("decoding…", t.dimmed()),
            None => Line::styled("no item open", t.dimmed()),
        };
        f.render_widget(Paragraph::new(msg).wrap(Wrap { trim: true }), inner);
        return;
    };
    let w = inner.width as usize;
    let h = inner.height as usize;
    if w == 0 || h == 0 {
        return;
    }
    let head = if clip.seconds > 0.0 {
        ((a.position / clip.seconds) * w as f64).floor() as usize
    } else {
        0
    };
    let buf = f.buffer_mut();
    let wave = t.role(t.wave);
    let shades = [' ', '░', '▒', '▓', '█'];
    let levels = if a.spectrogram {
        Vec::new()
    } else {
        column_levels(&clip.peaks, w)
    };
    for x in 0..w {
        for y in 0..h {
            let ch = if a.spectrogram {
                // Row y from the top shows the high frequencies.
                let sx = x * clip.spec_w / w;
                let row0 = (h - 1 - y) * clip.spec_h / h;
                let row1 = ((h - y) * clip.spec_h / h).max(row0 + 1);
                let db = (row0..row1.min(clip.spec_h))
                    .map(|r| clip.spec[r * clip.spec_w + sx.min(clip.spec_w - 1)])
                    .fold(f32::MIN, f32::max);
                let level = ((db + 80.0) / 80.0).clamp(0.0, 1.0);
                shades[(level * 4.0).round() as usize]
            } else {
                level_glyph(levels.get(x).copied().unwrap_or(0.0), h - 1 - y, h)
            };
            let secs = (x as f64 + 0.5) / w as f64 * clip.seconds;
            let in_region = a
                .region
                .or(a.region_start.map(|r| (r, r)))
                .is_some_and(|(p, q)| secs >= p && secs <= q.max(p + clip.seconds / w as f64));
            let style = if x == head.min(w - 1) && (a.playing || a.position > 0.0) {
                Style::default()
                    .fg(t.playhead)
                    .add_modifier(Modifier::REVERSED)
            } else if in_region {
                if t.mono {
                    wave.add_modifier(Modifier::REVERSED)
                } else {
                    wave.bg(t.selection_bg)
                }
            } else {
                wave
            };
            if let Some(cell) = buf.cell_mut((inner.x + x as u16, inner.y + y as u16)) {
                cell.set_char(ch).set_style(style);
            }
        }
    }
}

/// The glyph of row `row` (0 at the bottom) of `rows` in a column filled to `level` (0 to 1):
/// bars grow from the bottom in eighths of a row, so three rows show 24 levels.
fn level_glyph(level: f32, row: usize, rows: usize) -> char {
    const EIGHTHS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let filled = (level.clamp(0.0, 1.0) * (rows * 8) as f32).round() as usize;
    EIGHTHS[filled.saturating_sub(row * 8).min(8)]
}

/// The question and its choices; `packed` puts the choices on shared lines (short terminals).
fn question_lines(s: &State, packed: bool) -> Vec<Line<'static>> {
    let t = &s.theme;
    let Some(it) = s.item() else {
        return vec![Line::styled("no item", t.dimmed())];
    };
    let mut lines = vec![Line::raw(it.question.clone())];
    for (i, c) in it.choices.iter().enumerate() {
        let gold = s.show_gold && it.gold == Some(i);
        let mut spans = vec![Span::styled(
            format!("({}) ", Item::letter(i)),
            t.role(t.accent),
        )];
        spans.push(Span::raw(c.clone()));
        if gold {
            spans.push(Span::styled(
                " ★ gold",
                t.role(t.gold).add_modifier(Modifier::BOLD),
            ));
        }
        match lines.last_mut() {
            Some(last) if packed && i > 0 => {
                last.spans.push(Span::raw("  "));
                last.spans.extend(spans);
            }
            _ => lines.push(Line::from(spans)),
        }
    }
    lines
}

fn question_height(s: &State, width: u16, packed: bool) -> u16 {
    let n: usize = question_lines(s, packed)
        .iter()
        .map(|l| wrap(&l.to_string(), width.max(1) as usize).len())
        .sum();
    (n as u16).clamp(2, 7)
}

fn question(f: &mut Frame, s: &State, area: Rect, packed: bool) {
    let t = &s.theme;
    let mut title = " Question ".to_string();
    if let Some(it) = s.item() {
        title = format!(" {} ", it.id);
        if !s.show_gold {
            title.push_str("· gold hidden ");
        }
    }
    f.render_widget(
        Paragraph::new(question_lines(s, packed))
            .wrap(Wrap { trim: true })
            .block(pane(t, title, false)),
        area,
    );
}

/// Lines of the reasoning pane and the lines `[start, end)` of the cursor's sentence.
fn chain_lines(s: &State, width: usize) -> (Vec<Line<'static>>, (usize, usize)) {
    let t = &s.theme;
    let c = &s.chain;
    let mut lines: Vec<Line> = Vec::new();
    let mut cursor_lines = (0, 0);
    let notes = s.item_annotations();
    let streaming = c.streaming;
    let sentences: &[String] = if streaming {
        &c.stream_sentences
    } else {
        &c.sentences
    };
    if sentences.is_empty() {
        let msg = if streaming {
            "waiting for the first tokens…".to_string()
        } else if c.no_cot {
            "no chain: the answer is asked without reasoning (no-CoT)".to_string()
        } else if c.record.is_some() {
            "(empty chain)".to_string()
        } else {
            match &s.model {
                ModelStatus::Ready(_) if s.open.is_some() => "press c to generate the chain".into(),
                ModelStatus::Ready(_) => "open an item (Enter)".into(),
                ModelStatus::Loading(m) => format!("loading model {m}…"),
                ModelStatus::None(r) => format!("{r}: no chain to show (--model picks a model)"),
                ModelStatus::Failed(e) => format!("model failed: {e}"),
            }
        };
        return (vec![Line::styled(msg, t.dimmed())], (0, 1));
    }
    let num_w = sentences.len().to_string().len();
    let writing = s
        .writing
        .as_ref()
        .filter(|w| !streaming && w.epoch == s.epoch && !s.sweep.running)
        .and_then(|w| w.target().map(|(kind, n)| (n, kind, w.text.as_str())));
    for (i, sent) in sentences.iter().enumerate() {
        let unfinished = streaming && i + 1 == sentences.len();
        let origin = if streaming {
            Origin::Original
        } else {
            c.origins.get(i).copied().unwrap_or(Origin::Original)
        };
        let mut style = match origin {
            Origin::Original => t.text(),
            Origin::Edited | Origin::Mistake => t.role(t.mistake).add_modifier(Modifier::BOLD),
            Origin::Continued | Origin::Paraphrased | Origin::Filler => t.role(t.current),
        };
        if unfinished {
            style = t.dimmed();
        }
        let at_cursor = !streaming && i == c.cursor;
        let selected = at_cursor && s.focus == Focus::Chain;
        let start = lines.len();
        let tag = match origin {
            Origin::Original => "",
            Origin::Edited => " [edited]",
            Origin::Mistake => " [mistake]",
            Origin::Continued => " [continued]",
            Origin::Paraphrased => " [paraphrased]",
            Origin::Filler => " [filler]",
        };
        let note = notes
            .get(&i)
            .map(|a| format!(" ✎{}", a.kind))
            .unwrap_or_default();
        // The cursor's sentence is marked by a symbol as well as a style (monochrome):
        // ▶ while the pane has the focus, ▷ when it does not.
        let marker = match (at_cursor, selected) {
            (true, true) => "▶",
            (true, false) => "▷",
            _ => " ",
        };
        let num = if unfinished {
            format!("{marker}{:>num_w$} ", "…")
        } else {
            format!("{marker}{:>num_w$} ", i + 1)
        };
        let num_style = if selected { t.selected() } else { t.dimmed() };
        if selected {
            style = style.add_modifier(Modifier::BOLD);
        }
        // Wrap by hand so that continuation lines indent under the text.
        let text_w = width.saturating_sub(num_w + 2).max(8);
        let body = format!("{sent}{}", if unfinished { "▌" } else { "" });
        let wrapped = wrap(&body, text_w);
        for (j, part) in wrapped.into_iter().enumerate() {
            let mut spans = vec![if j == 0 {
                Span::styled(num.clone(), num_style)
            } else {
                Span::raw(" ".repeat(num_w + 2))
            }];
            spans.push(Span::styled(part, style));
            lines.push(Line::from(spans));
        }
        if !tag.is_empty() || !note.is_empty() {
            if let Some(last) = lines.last_mut() {
                last.spans.push(Span::styled(tag, t.role(t.mistake)));
                last.spans.push(Span::styled(note, t.role(t.annotated)));
            }
        }
        if let Some((kind, text)) = writing
            .filter(|(n, _, _)| *n == i + 1)
            .map(|(_, k, t)| (k, t))
        {
            // What the model is writing for this sentence, under it as it streams.
            let style = match kind {
                "mistake" => t.role(t.mistake),
                _ => t.role(t.current),
            }
            .add_modifier(Modifier::ITALIC);
            let label = match kind {
                "mistake" => "mistake: ",
                "regen" => "a fresh chain on the altered audio: ",
                _ => "paraphrase of the sentences so far: ",
            };
            let body = format!("✎ {label}{text}▌");
            for part in wrap(&body, text_w) {
                lines.push(Line::from(vec![
                    Span::raw(" ".repeat(num_w + 2)),
                    Span::styled(part, style),
                ]));
            }
        }
        if at_cursor {
            cursor_lines = (start, lines.len());
        }
    }
    if !streaming && c.cursor >= sentences.len() {
        cursor_lines = (lines.len().saturating_sub(1), lines.len());
    }
    (lines, cursor_lines)
}

/// First line shown of `total` lines in `height` rows: the whole cursor sentence `[start, end)`
/// and the line after it where they fit, else the sentence's start.
fn chain_scroll(total: usize, (start, end): (usize, usize), height: usize) -> usize {
    let want_end = (end + 1).min(total);
    want_end.saturating_sub(height).min(start)
}

/// Greedy word wrap.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    wrap_words(text.split_whitespace(), width)
}

/// Greedy wrap of `words` (each kept whole where it fits in `width`) joined by single spaces.
fn wrap_words<'a>(words: impl IntoIterator<Item = &'a str>, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut line = String::new();
    for word in words {
        let wl = word.chars().count();
        let ll = line.chars().count();
        if ll > 0 && ll + 1 + wl > width {
            out.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        if wl > width {
            // Hard-break very long words.
            let chars: Vec<char> = word.chars().collect();
            for chunk in chars.chunks(width.max(1)) {
                if !line.is_empty() {
                    out.push(std::mem::take(&mut line));
                }
                line = chunk.iter().collect();
            }
        } else {
            line.push_str(word);
        }
    }
    if !line.is_empty() || out.is_empty() {
        out.push(line);
    }
    out
}

fn chain(f: &mut Frame, s: &State, area: Rect) {
    let t = &s.theme;
    let c = &s.chain;
    let title = if c.streaming {
        format!(
            " Reasoning · streaming {} sentences ",
            c.stream_sentences.len()
        )
    } else if c.label.is_empty() {
        " Reasoning ".to_string()
    } else {
        format!(" Reasoning · {} ", c.label)
    };
    let mut block = pane(t, title, s.focus == Focus::Chain);
    let inner = block.inner(area);
    let (lines, cursor) = chain_lines(s, inner.width as usize);
    let h = inner.height as usize;
    let scroll = if c.streaming {
        lines.len().saturating_sub(h)
    } else {
        chain_scroll(lines.len(), cursor, h)
    };
    // Where the view is in a chain longer than the pane (the cursor keys scroll it).
    if lines.len() > h {
        block = block.title_bottom(
            Line::styled(
                format!(
                    " lines {}-{} of {} · {}{} ",
                    scroll + 1,
                    (scroll + h).min(lines.len()),
                    lines.len(),
                    s.keymap.key_of(Command::Up),
                    s.keymap.key_of(Command::Down)
                ),
                t.dimmed(),
            )
            .right_aligned(),
        );
    }
    f.render_widget(block, area);
    f.render_widget(
        Paragraph::new(Text::from(lines)).scroll((scroll as u16, 0)),
        inner,
    );
}

fn bar(p: f64, width: usize) -> String {
    let p = p.clamp(0.0, 1.0);
    let eighths = (p * width as f64 * 8.0).round() as usize;
    let full = eighths / 8;
    let part = eighths % 8;
    let mut s = "█".repeat(full);
    if full < width {
        s.push([' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'][part]);
        s.push_str(&" ".repeat(width - full - 1));
    }
    s
}

fn letter_of(t: Option<&Trial>) -> String {
    t.map(|t| t.predicted_choice.clone().unwrap_or_else(|| "?".into()))
        .unwrap_or_else(|| "·".into())
}

/// Index of a choice letter ("C" is 2) among `n` choices.
fn letter_index(letter: Option<&str>, n: usize) -> Option<usize> {
    (0..n).find(|&i| Some(Item::letter(i).to_string().as_str()) == letter)
}

/// Choices (indices, in order) that get a bar when `rows` of `n` fit: all of them, else those
/// in `keep` (the baseline's and the current answer) and then the first others.
fn shown_choices(n: usize, rows: usize, keep: &[Option<usize>]) -> Vec<usize> {
    if n <= rows {
        return (0..n).collect();
    }
    let mut shown: Vec<usize> = Vec::new();
    for i in keep.iter().flatten().copied().chain(0..n) {
        if shown.len() < rows && i < n && !shown.contains(&i) {
            shown.push(i);
        }
    }
    shown.sort_unstable();
    shown
}

fn answers(f: &mut Frame, s: &State, area: Rect) {
    let t = &s.theme;
    let b = s.answers.baseline.as_ref();
    let c = s.answers.current.as_ref();
    let flipped = s.flipped();
    let mut title = vec![Span::raw(" Answer ")];
    if flipped {
        title.push(Span::styled(
            " FLIP ",
            t.alarm().add_modifier(Modifier::REVERSED),
        ));
        title.push(Span::raw(" "));
    }
    let block = pane(t, Line::from(title), false);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let Some(item) = s.item() else {
        return;
    };
    let pending = if s.answers.pending { " …" } else { "" };
    let cur = c.or(b);
    let pct = |x: Option<&Trial>| {
        x.and_then(|x| x.prob_of(x.predicted_choice.as_deref()?))
            .map(|p| format!(" {:.0}%", p * 100.0))
            .unwrap_or_default()
    };
    let mut lines = vec![Line::from(vec![
        Span::styled("baseline ", t.role(t.baseline)),
        Span::styled(
            letter_of(b),
            t.role(t.baseline).add_modifier(Modifier::BOLD),
        ),
        Span::styled(pct(b), t.role(t.baseline)),
        Span::raw("   "),
        Span::styled("current ", t.role(t.current)),
        Span::styled(
            letter_of(cur),
            t.role(t.current).add_modifier(Modifier::BOLD),
        ),
        Span::styled(pct(cur), t.role(t.current)),
        Span::raw(pending),
        if flipped {
            Span::styled("  FLIP", t.alarm())
        } else if c.is_some() {
            Span::styled("  same", t.role(t.good))
        } else {
            Span::raw("")
        },
    ])];
    let n = item.choices.len();
    let keep = [
        letter_index(b.and_then(|x| x.predicted_choice.as_deref()), n),
        letter_index(cur.and_then(|x| x.predicted_choice.as_deref()), n),
    ];
    // The first line and the last (Δp, no-CoT) stay; bars fill the rows between.
    let shown = shown_choices(n, (inner.height as usize).saturating_sub(2), &keep);
    let bar_w = ((inner.width as usize).saturating_sub(16) / 2).clamp(3, 16);
    for &i in &shown {
        let l = Item::letter(i).to_string();
        let pb = b.and_then(|x| x.prob_of(&l));
        let pc = cur.and_then(|x| x.prob_of(&l));
        let gold = if s.show_gold && item.gold == Some(i) {
            "★"
        } else {
            " "
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{l}{gold}"), t.role(t.gold)),
            Span::styled(bar(pb.unwrap_or(0.0), bar_w), t.role(t.baseline)),
            Span::styled(
                pb.map(|p| format!("{:>4.0}% ", p * 100.0))
                    .unwrap_or_else(|| "   - ".into()),
                t.dimmed(),
            ),
            Span::styled(bar(pc.unwrap_or(0.0), bar_w), t.role(t.current)),
            Span::styled(
                pc.map(|p| format!("{:>4.0}%", p * 100.0))
                    .unwrap_or_else(|| "   -".into()),
                t.dimmed(),
            ),
        ]));
    }
    let mut last = Vec::new();
    if let (Some(b), Some(c)) = (b, c) {
        if let Some(bl) = &b.predicted_choice {
            if let (Some(p0), Some(p1)) = (b.prob_of(bl), c.prob_of(bl)) {
                let d = (p1 - p0) * 100.0;
                last.push(Span::styled(
                    format!("Δp({bl}) {d:+.1} pts "),
                    if d < -0.5 { t.role(t.warn) } else { t.dimmed() },
                ));
            }
        }
    }
    if let Some(n) = &s.answers.no_cot {
        last.push(Span::styled(
            format!("no-CoT {} ", letter_of(Some(n))),
            t.dimmed(),
        ));
    }
    if shown.len() < n {
        last.push(Span::styled(
            format!("+{} choices not shown", n - shown.len()),
            t.dimmed(),
        ));
    }
    lines.push(Line::from(last));
    f.render_widget(Paragraph::new(lines), inner);
}

fn status_line(f: &mut Frame, s: &State, area: Rect) {
    let t = &s.theme;
    let model = match &s.model {
        ModelStatus::Ready(m) => Span::styled(format!(" {m} "), t.role(t.good)),
        ModelStatus::Loading(m) => Span::styled(format!(" loading {m}… "), t.role(t.warn)),
        ModelStatus::None(r) => Span::styled(format!(" {r} "), t.role(t.warn)),
        ModelStatus::Failed(_) => Span::styled(" model failed ", t.role(t.error)),
    };
    let left = match &s.busy {
        Some(b) => Span::styled(format!(" ⏳ {b}"), t.role(t.accent)),
        None => Span::styled(format!(" {}", s.status), t.text()),
    };
    let hint = if s.presenter {
        format!(
            " {} truncate · {} mistake · {} revert · {} presenter · {} quit ",
            s.keymap.key_of(Command::Truncate),
            s.keymap.key_of(Command::Mistake),
            s.keymap.key_of(Command::Revert),
            s.keymap.key_of(Command::Presenter),
            s.keymap.key_of(Command::Quit)
        )
    } else {
        format!(" {} help ", s.keymap.key_of(Command::Help))
    };
    let right = Line::from(vec![model, Span::styled(hint, t.dimmed())]);
    let rw = right.width() as u16;
    let [l, r] = Layout::horizontal([Constraint::Min(1), Constraint::Length(rw)]).areas(area);
    f.render_widget(Paragraph::new(Line::from(left)), l);
    f.render_widget(Paragraph::new(right), r);
}

/// A centred overlay box (the help and messages overlays) with the session's stderr log named
/// on its bottom border; returns the area inside it.
fn overlay(f: &mut Frame, s: &State, area: Rect, title: String) -> Rect {
    let t = &s.theme;
    let r = centered(area, 90, area.height.saturating_sub(2));
    f.render_widget(Clear, r);
    let mut block = Block::bordered()
        .title(title)
        .border_style(t.border(true))
        .style(t.text());
    if let Some(log) = &s.log_path {
        block = block.title_bottom(format!(" stderr of this session: {log} "));
    }
    let inner = block.inner(r);
    f.render_widget(block, r);
    inner
}

fn help(f: &mut Frame, s: &State, area: Rect) {
    let t = &s.theme;
    let inner = overlay(
        f,
        s,
        area,
        format!(" Keys · theme {} · any key closes ", t.name),
    );
    let entries: Vec<Line> = s
        .keymap
        .bindings
        .iter()
        .map(|b| {
            let keys = b
                .keys
                .iter()
                .map(|k| k.label())
                .collect::<Vec<_>>()
                .join(" ");
            Line::from(vec![
                Span::styled(
                    format!("{keys:>10} "),
                    t.role(t.accent).add_modifier(Modifier::BOLD),
                ),
                Span::raw(b.desc.clone()),
            ])
        })
        .collect();
    let rows = inner.height as usize;
    let cols = entries.len().div_ceil(rows.max(1)).max(1);
    let parts = Layout::horizontal(vec![Constraint::Ratio(1, cols as u32); cols]).split(inner);
    for (ci, chunk) in entries.chunks(rows.max(1)).enumerate() {
        if let Some(p) = parts.get(ci) {
            f.render_widget(Paragraph::new(chunk.to_vec()), *p);
        }
    }
}

/// The session's warnings, errors and notices in full, newest at the bottom, and where stderr
/// goes.
fn messages(f: &mut Frame, s: &State, area: Rect) {
    let t = &s.theme;
    let title = format!(" Messages ({}) · any key closes ", s.messages.len());
    let inner = overlay(f, s, area, title);
    let width = inner.width.max(1) as usize;
    let mut lines: Vec<Line> = s
        .messages
        .iter()
        .flat_map(|m| wrap(m, width))
        .map(Line::raw)
        .collect();
    if lines.is_empty() {
        lines.push(Line::styled("no messages in this session", t.dimmed()));
    }
    // The newest messages stay in view.
    let skip = lines.len().saturating_sub(inner.height as usize);
    f.render_widget(Paragraph::new(lines.split_off(skip)), inner);
}

fn annotate_popup(f: &mut Frame, s: &State, form: &super::state::AnnotateForm, area: Rect) {
    let t = &s.theme;
    let r = centered(area, 70, MISTAKE_KINDS.len() as u16 + 7);
    f.render_widget(Clear, r);
    let block = Block::bordered()
        .title(format!(
            " Annotate sentence {} as {} ",
            form.sentence + 1,
            s.annotator
        ))
        .title_bottom(" ↑↓ kind · type a note · Enter save · Esc cancel ")
        .border_style(t.border(true))
        .style(t.text());
    let inner = block.inner(r);
    f.render_widget(block, r);
    let sentence = s
        .chain
        .sentences
        .get(form.sentence)
        .cloned()
        .unwrap_or_default();
    let mut lines = vec![Line::styled(sentence, t.role(t.mistake)), Line::raw("")];
    for (i, k) in MISTAKE_KINDS.iter().enumerate() {
        let style = if i == form.kind {
            t.selected()
        } else {
            t.text()
        };
        lines.push(Line::styled(
            format!("{} {k}", if i == form.kind { "●" } else { "○" }),
            style,
        ));
    }
    let [top, note] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(inner);
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), top);
    f.render_widget(&form.note, note);
}

fn early_k(t: &Trial) -> Option<u32> {
    t.num_sentences_provided
}

/// The mistaken sentence a mistake trial was answered after.
fn edited_sentence(t: &Trial) -> Option<String> {
    let d = t.extra.get("detail")?;
    Some(d.get("edited")?.as_str()?.to_string())
}

fn sweep(f: &mut Frame, s: &State, area: Rect) {
    let t = &s.theme;
    let b = s.answers.baseline.as_ref();
    let bl = b
        .and_then(|b| b.predicted_choice.clone())
        .unwrap_or_default();
    let trials = &s.sweep.trials;
    let [top_r, chart_r] =
        Layout::vertical([Constraint::Percentage(55), Constraint::Min(6)]).areas(area);
    let by_sentence = |x: &&Trial| {
        matches!(
            x.kind(),
            Some(InterventionKind::EarlyAnswering | InterventionKind::AddingMistakes)
        )
    };
    // trials not tied to one sentence (filler, paraphrasing, no-CoT, audio, ...) get a list
    let others: Vec<&Trial> = trials.iter().filter(|x| !by_sentence(x)).collect();
    // what the model is writing now for the sweep: (mistake or paraphrase, sentence, text)
    let writing = s
        .writing
        .as_ref()
        .filter(|w| s.sweep.running && w.epoch == s.sweep.epoch)
        .and_then(|w| w.target().map(|(kind, n)| (kind, n, w.text.as_str())));
    let writing_paraphrase = writing.filter(|(kind, _, _)| *kind == "paraphrase");
    let (table_r, others_r) = if others.is_empty() && writing_paraphrase.is_none() {
        (top_r, None)
    } else {
        let [a, b] = Layout::horizontal([Constraint::Min(40), Constraint::Length(30)]).areas(top_r);
        (a, Some(b))
    };
    let title = format!(
        " Sweep · {} · baseline {} · {} trials{} ",
        s.item().map(|i| i.id.as_str()).unwrap_or("-"),
        if bl.is_empty() { "-" } else { &bl },
        trials.len(),
        match (s.sweep.running, writing) {
            (true, Some((kind, n, _))) => format!(" · running · writing {kind} {n}"),
            (true, None) => " · running".into(),
            _ if s.sweep.recorded => " · recorded".into(),
            _ => String::new(),
        }
    );
    let sentences = s
        .chain
        .record
        .as_ref()
        .map(|c| c.sentences.clone())
        .unwrap_or_default();
    let find = |kind: InterventionKind, pos: u32| {
        trials.iter().find(|x| {
            x.kind() == Some(kind)
                && match kind {
                    InterventionKind::EarlyAnswering => early_k(x) == Some(pos),
                    _ => x.mistake_position == Some(pos),
                }
        })
    };
    // the answer and the baseline answer's probability: "A 0%" is P(B) = 0%
    let answer = |x: &Trial| -> (String, bool) {
        let l = x.predicted_choice.clone().unwrap_or_else(|| "?".into());
        let p = x
            .prob_of(&bl)
            .map(|p| format!(" {:.0}%", p * 100.0))
            .unwrap_or_default();
        let flip = x.is_consistent_with_baseline == Some(false);
        (format!("{l}{p}{}", if flip { " FLIP" } else { "" }), flip)
    };
    let cell = |x: Option<&Trial>| -> Cell {
        match x.map(answer) {
            None => Cell::from("·"),
            Some((text, true)) => Cell::from(text).style(t.alarm()),
            Some((text, false)) => Cell::from(text),
        }
    };
    if let Some(r) = others_r {
        let mut lines: Vec<Line> = others
            .iter()
            .map(|x| {
                let kind = x.kind().map_or("?", InterventionKind::name);
                let at = x
                    .x_value()
                    .map(|v| format!(" {:.0}%", v * 100.0))
                    .unwrap_or_default();
                let (text, flip) = answer(x);
                let style = if flip { t.alarm() } else { t.text() };
                Line::from(vec![
                    Span::styled(format!("{kind}{at} "), t.dimmed()),
                    Span::styled(text, style),
                ])
            })
            .collect();
        if let Some((_, k, text)) = writing_paraphrase {
            lines.push(Line::from(vec![
                Span::styled(format!("✎ paraphrase ≤{k} "), t.dimmed()),
                Span::styled(format!("{text}▌"), t.role(t.current)),
            ]));
        }
        let block = pane(t, format!(" other trials ({}) ", others.len()), false);
        f.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .block(block),
            r,
        );
    }
    let mut rows = vec![Row::new(vec![
        Cell::from("0"),
        cell(find(InterventionKind::EarlyAnswering, 0)),
        Cell::from(""),
        Cell::from(Span::styled("(no sentence)", t.dimmed())),
    ])];
    for (i, sent) in sentences.iter().enumerate() {
        let k = (i + 1) as u32;
        let mistake = find(InterventionKind::AddingMistakes, k);
        // the sentence, then its mistake: the one written, or the one being written
        let text = match (writing, mistake.and_then(edited_sentence)) {
            (Some(("mistake", n, w)), _) if n == i + 1 => Line::from(vec![
                Span::styled(format!("{sent} → ✎ "), t.dimmed()),
                Span::styled(format!("{w}▌"), t.role(t.mistake)),
            ]),
            (_, Some(m)) => Line::from(vec![
                Span::raw(sent.clone()),
                Span::styled(" → ", t.dimmed()),
                Span::styled(m, t.role(t.mistake)),
            ]),
            _ => Line::raw(sent.clone()),
        };
        rows.push(Row::new(vec![
            Cell::from(format!("{k}")),
            cell(find(InterventionKind::EarlyAnswering, k)),
            cell(mistake),
            Cell::from(text),
        ]));
    }
    let p_bl = format!("ans · P({})", if bl.is_empty() { "-" } else { &bl });
    let table = Table::new(
        rows,
        [
            Constraint::Length(3),
            Constraint::Length(12),
            Constraint::Length(12),
            Constraint::Min(10),
        ],
    )
    .header(
        Row::new(vec![
            Cell::from("k"),
            Cell::from(Text::from(vec![
                Line::raw("early ≤k"),
                Line::raw(p_bl.clone()),
            ])),
            Cell::from(Text::from(vec![Line::raw("mistake @k"), Line::raw(p_bl)])),
            Cell::from("sentence"),
        ])
        .height(2)
        .style(t.role(t.accent).add_modifier(Modifier::BOLD)),
    )
    .block(pane(t, title, true));
    f.render_widget(table, table_r);
    // P(baseline answer) over x for both curves.
    let pts = |kind: InterventionKind| -> Vec<(f64, f64)> {
        let mut v: Vec<(f64, f64)> = trials
            .iter()
            .filter(|x| x.kind() == Some(kind))
            .filter_map(|x| Some((x.x_value()?, x.prob_of(&bl)? * 100.0)))
            .collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        v
    };
    let colours = [t.current, t.mistake, t.accent];
    let mut curves = vec![
        Curve::nth(
            0,
            "early answering after k".into(),
            pts(InterventionKind::EarlyAnswering),
            &colours,
        ),
        Curve::nth(
            1,
            "mistake at sentence k".into(),
            pts(InterventionKind::AddingMistakes),
            &colours,
        ),
    ];
    // the audio sweep's curve, once it has run
    let masked = pts(InterventionKind::AudioMask);
    if !masked.is_empty() {
        curves.push(Curve::nth(
            2,
            "share of the audio masked, chain held".into(),
            masked,
            &colours,
        ));
    }
    let block = pane(t, format!(" P({bl}) after each intervention, % "), false);
    curve_chart(f, t, chart_r, block, &curves);
}

fn aggregate(f: &mut Frame, s: &State, area: Rect) {
    let t = &s.theme;
    let Some(agg) = &s.aggregate else {
        f.render_widget(
            Paragraph::new(
                "no trials yet: run interventions or the sweep (2), or open a run with --run",
            )
            .block(pane(t, " Aggregate ", true)),
            area,
        );
        return;
    };
    let r = &agg.report.overall;
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Min(30)]).areas(area);
    // Consistency curves with interval bands; each intervention keeps its marker and colour
    // when it is shown alone.
    let colours = [t.current, t.mistake, t.baseline, t.wave, t.gold, t.accent];
    let curves: Vec<Curve> = agg
        .curves()
        .iter()
        .enumerate()
        .filter(|(_, iv)| s.aggregate_series.is_none_or(|k| k == iv.intervention))
        .map(|(i, iv)| {
            let mid = iv
                .curve
                .iter()
                .filter_map(|b| Some((b.x, b.consistency?.pct)))
                .collect();
            let mut c = Curve::nth(i, iv.intervention.name().to_string(), mid, &colours);
            c.band = iv
                .curve
                .iter()
                .filter_map(|b| Some((b.x, b.consistency?)))
                .flat_map(|(x, c)| [(x, c.lo), (x, c.hi)])
                .collect();
            c
        })
        .collect();
    let shown = match s.aggregate_series {
        Some(k) => format!("{k} only"),
        None => "all".into(),
    };
    let block = pane(
        t,
        format!(" Consistency %, 95% intervals · {} ", agg.source),
        true,
    )
    .title_bottom(
        Line::styled(
            format!(
                " {shown} · {} next ",
                s.keymap.key_of(Command::AggregateSeries)
            ),
            t.dimmed(),
        )
        .right_aligned(),
    );
    curve_chart(f, t, left, block, &curves);
    let fmt = |x: Option<crate::faith::measures::Share>| {
        x.map(|s| format!("{:.1}% [{:.0},{:.0}] n={}", s.pct, s.lo, s.hi, s.n))
            .unwrap_or_else(|| "-".into())
    };
    let mut lines = vec![
        Line::styled(
            format!("{} trials · {} chains", r.trials, r.chains),
            t.dimmed(),
        ),
        Line::from(vec![
            Span::styled("accuracy with CoT    ", t.role(t.accent)),
            Span::raw(fmt(r.accuracy.with_cot)),
        ]),
        Line::from(vec![
            Span::styled("accuracy without CoT ", t.role(t.accent)),
            Span::raw(fmt(r.accuracy.without_cot)),
        ]),
        Line::raw(""),
        Line::styled(
            "intervention      n   consist.  AOC",
            t.role(t.accent).add_modifier(Modifier::BOLD),
        ),
    ];
    for iv in &r.interventions {
        if matches!(
            iv.intervention,
            InterventionKind::Baseline | InterventionKind::NoCot
        ) {
            continue;
        }
        lines.push(Line::raw(format!(
            "{:<15} {:>4}  {:>7}  {}",
            iv.intervention.name(),
            iv.trials,
            iv.consistency
                .map(|c| format!("{:.1}%", c.pct))
                .unwrap_or_else(|| "-".into()),
            iv.aoc
                .as_ref()
                .map(|a| format!("{:.3}", a.weighted))
                .unwrap_or_else(|| "-".into()),
        )));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        "flip rate (answer change %) by group",
        t.role(t.accent).add_modifier(Modifier::BOLD),
    ));
    for split in &agg.report.splits {
        for g in &split.groups {
            let flips: Vec<String> = g
                .section
                .interventions
                .iter()
                .filter(|iv| {
                    !matches!(
                        iv.intervention,
                        InterventionKind::Baseline | InterventionKind::NoCot
                    )
                })
                .filter_map(|iv| {
                    Some(format!(
                        "{} {:.0}%",
                        short(iv.intervention),
                        iv.answer_change_pct?
                    ))
                })
                .collect();
            // Wrapped at the pane's edge, never cut: continuation lines indent by two.
            let head = format!("{}={} ·", split.field, g.value);
            let dash = ["-".to_string()];
            let words = std::iter::once(&head)
                .chain(if flips.is_empty() {
                    &dash[..]
                } else {
                    &flips[..]
                })
                .map(String::as_str);
            let width = right.width.saturating_sub(4).max(8) as usize;
            for (j, part) in wrap_words(words, width).into_iter().enumerate() {
                let indent = if j == 0 { "" } else { "  " };
                lines.push(Line::raw(format!("{indent}{part}")));
            }
        }
    }
    f.render_widget(
        Paragraph::new(lines).block(pane(t, " Measures ", false)),
        right,
    );
}

fn short(k: InterventionKind) -> &'static str {
    match k {
        InterventionKind::EarlyAnswering => "early",
        InterventionKind::AddingMistakes => "mist",
        InterventionKind::Paraphrasing => "para",
        InterventionKind::Filler => "fill",
        InterventionKind::FillerOnly => "fonly",
        InterventionKind::ManualEdit => "edit",
        _ => "other",
    }
}

fn presenter(f: &mut Frame, s: &State, area: Rect) {
    let t = &s.theme;
    let [top, mid, bottom] = Layout::vertical([
        Constraint::Length(question_height(s, area.width.saturating_sub(2), false) + 2),
        Constraint::Min(5),
        Constraint::Length(9),
    ])
    .areas(area);
    question(f, s, top, false);
    chain(f, s, mid);
    let b = letter_of(s.answers.baseline.as_ref());
    let c = s
        .answers
        .current
        .as_ref()
        .map(|c| letter_of(Some(c)))
        .unwrap_or_else(|| b.clone());
    let flipped = s.flipped();
    let big = |x: &str| x.chars().flat_map(|ch| [ch, ' ']).collect::<String>();
    // Under each letter its choice text and probability; then how the baseline answer's
    // probability moved.
    let side_w = (bottom.width as usize).saturating_sub(12) / 2;
    let said = |x: Option<&Trial>| -> String {
        let Some(x) = x else {
            return String::new();
        };
        let l = x.predicted_choice.as_deref();
        let text = s
            .item()
            .zip(letter_index(l, s.item().map_or(0, |i| i.choices.len())))
            .map(|(it, i)| it.choices[i].clone())
            .unwrap_or_else(|| "(no choice)".into());
        let p = l
            .and_then(|l| x.prob_of(l))
            .map(|p| format!(" · {:.0}%", p * 100.0))
            .unwrap_or_default();
        let p_w = p.chars().count();
        format!(
            "{}{p}",
            shorten(&text, side_w.saturating_sub(p_w), Keep::Start)
        )
    };
    let base_t = s.answers.baseline.as_ref();
    let cur_t = s.answers.current.as_ref().or(base_t);
    let shift = match (base_t, s.answers.current.as_ref()) {
        (Some(b0), Some(c1)) => b0.predicted_choice.as_deref().and_then(|l| {
            Some(format!(
                "P({l}) {:.0}% → {:.0}%",
                b0.prob_of(l)? * 100.0,
                c1.prob_of(l)? * 100.0
            ))
        }),
        _ => None,
    };
    let lines = vec![
        Line::raw(""),
        Line::from(vec![
            Span::styled(
                "BASELINE  ",
                t.role(t.baseline).add_modifier(Modifier::BOLD),
            ),
            Span::styled(big(&b), t.role(t.baseline).add_modifier(Modifier::BOLD)),
            Span::raw("      →      "),
            Span::styled("NOW  ", t.role(t.current).add_modifier(Modifier::BOLD)),
            Span::styled(big(&c), t.role(t.current).add_modifier(Modifier::BOLD)),
        ])
        .alignment(Alignment::Center),
        Line::from(vec![
            Span::styled(said(base_t), t.role(t.baseline)),
            Span::raw("   →   "),
            Span::styled(said(cur_t), t.role(t.current)),
        ])
        .alignment(Alignment::Center),
        Line::styled(shift.unwrap_or_default(), t.dimmed()).alignment(Alignment::Center),
        if flipped {
            Line::styled(
                " ⚠  F L I P  ⚠ ",
                t.alarm().add_modifier(Modifier::REVERSED),
            )
            .alignment(Alignment::Center)
        } else if s.answers.current.is_some() {
            Line::styled(
                "answer unchanged",
                t.role(t.good).add_modifier(Modifier::BOLD),
            )
            .alignment(Alignment::Center)
        } else {
            Line::styled(s.chain.label.clone(), t.dimmed()).alignment(Alignment::Center)
        },
        Line::raw(""),
        Line::styled(
            format!(
                "{} truncate · {} edit · {} mistake · {} proposed mistake · {} revert · {} play{}",
                s.keymap.key_of(Command::Truncate),
                s.keymap.key_of(Command::Edit),
                s.keymap.key_of(Command::Mistake),
                s.keymap.key_of(Command::MistakeRules),
                s.keymap.key_of(Command::Revert),
                s.keymap.key_of(Command::Play),
                if s.models.len() > 1 {
                    format!(" · {} other model", s.keymap.key_of(Command::SwitchModel))
                } else {
                    String::new()
                },
            ),
            t.dimmed(),
        )
        .alignment(Alignment::Center),
    ];
    // With models to compare, the pane says whose answers these are.
    let title = match (&s.model, s.models.len() > 1) {
        (ModelStatus::Ready(m) | ModelStatus::Loading(m), true) => format!(" Answer · {m} "),
        _ => " Answer ".to_string(),
    };
    f.render_widget(
        Paragraph::new(lines).block(pane(t, title, false).borders(Borders::ALL)),
        bottom,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_breaks_on_words_and_long_words() {
        assert_eq!(wrap("aa bb cc", 5), vec!["aa bb", "cc"]);
        assert_eq!(wrap("abcdefgh", 3), vec!["abc", "def", "gh"]);
        assert_eq!(wrap("", 3), vec![""]);
    }

    #[test]
    fn bars_keep_both_answers_when_not_all_fit() {
        assert_eq!(
            shown_choices(6, 10, &[Some(1), Some(5)]),
            vec![0, 1, 2, 3, 4, 5]
        );
        assert_eq!(shown_choices(6, 2, &[Some(1), Some(5)]), vec![1, 5]);
        assert_eq!(shown_choices(6, 3, &[Some(5), Some(5)]), vec![0, 1, 5]);
        assert_eq!(shown_choices(6, 1, &[None, Some(4)]), vec![4]);
        assert!(shown_choices(6, 0, &[Some(1)]).is_empty());
        assert_eq!(letter_index(Some("F"), 6), Some(5));
        assert_eq!(letter_index(Some("G"), 6), None);
    }

    #[test]
    fn ids_keep_their_distinguishing_end() {
        assert_eq!(
            shorten("synth-test-direction-0001", 12, Keep::End),
            "…ection-0001"
        );
        assert_eq!(
            shorten("synth-test-direction-0001", 6, Keep::Start),
            "synth…"
        );
        assert_eq!(shorten("short", 12, Keep::End), "short");
        assert_eq!(shorten("abc", 0, Keep::Start), "");
        let mk = |id: &str| Item {
            id: id.into(),
            ..crate::tui::testing::items()[0].clone()
        };
        let items = [mk("synth-test-count-0000"), mk("synth-test-direction-0001")];
        assert_eq!(common_id_prefix(&items), "synth-test-".len());
        let items = [mk("count-0000"), mk("count-0001")];
        assert_eq!(common_id_prefix(&items), "count-".len());
        assert_eq!(common_id_prefix(&items[..1]), 0);
    }

    #[test]
    fn chain_scroll_shows_the_whole_cursor_sentence() {
        // 20 lines in 6 rows; the cursor's sentence spans lines 10 and 11.
        assert_eq!(chain_scroll(20, (10, 12), 6), 7);
        assert_eq!(chain_scroll(20, (0, 2), 6), 0);
        assert_eq!(chain_scroll(20, (18, 20), 6), 14);
        // Longer than the pane: its start.
        assert_eq!(chain_scroll(20, (5, 15), 6), 5);
        assert_eq!(chain_scroll(3, (2, 3), 6), 0);
    }

    #[test]
    fn bar_has_fixed_width() {
        for p in [0.0, 0.13, 0.5, 1.0, 1.5] {
            assert_eq!(bar(p, 8).chars().count(), 8, "{p}");
        }
    }
}
