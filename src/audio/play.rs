//! Playback through cpal with a silent fallback when no output device works.
//!
//! A [`Player`] holds one clip converted to the output device's rate and channel count. Its
//! position (the playhead) comes from a wall clock that pauses and jumps with the controls, not
//! from the samples the device has consumed: some devices (ALSA's null PCM) consume as fast as they
//! are fed. When there is no device, or it fails to open or fails while playing, the player goes
//! on silently with the same clock and says why through [`Player::warning`].

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, Sample, SampleFormat, SizedSample};

use super::{resample, Clip};

/// How far (seconds of audio) the output callback may run ahead of real time. Real devices never
/// get there (their buffers are shorter); ALSA's null and file PCMs would otherwise be fed as fast
/// as the CPU allows.
const MAX_LEAD: f64 = 1.0;

/// Longest single wait inside the output callback, so that stopping stays prompt.
const MAX_WAIT: Duration = Duration::from_millis(100);

/// What the player is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayerState {
    /// Not started, or stopped: the position is 0.
    Stopped,
    /// The clock runs and audio is sent to the device.
    Playing,
    /// The clock is held at the current position.
    Paused,
    /// The position has reached the end of the clip.
    Finished,
}

/// The output the player negotiated with the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputInfo {
    /// The device's name as the host reports it.
    pub device: String,
    /// Frames per second sent to the device.
    pub sample_rate: u32,
    /// Channels per frame (the mono clip is copied to each).
    pub channels: u16,
    /// Sample format, as cpal names it (`f32`, `i16`, ...).
    pub sample_format: String,
}

/// The playhead: a position that advances with wall time while running, capped at the duration.
#[derive(Debug, Clone)]
struct Clock {
    duration: f64,
    /// Position when the clock was last started, paused or moved.
    base: f64,
    /// When the clock was last started or moved while running; `None` while held.
    since: Option<Instant>,
}

impl Clock {
    fn new(duration: f64) -> Self {
        Self {
            duration,
            base: 0.0,
            since: None,
        }
    }

    fn position_at(&self, now: Instant) -> f64 {
        let run = self
            .since
            .map_or(0.0, |s| now.saturating_duration_since(s).as_secs_f64());
        (self.base + run).min(self.duration)
    }

    fn running(&self) -> bool {
        self.since.is_some()
    }

    fn start(&mut self, now: Instant) {
        if self.since.is_none() {
            self.since = Some(now);
        }
    }

    fn hold(&mut self, now: Instant) {
        self.base = self.position_at(now);
        self.since = None;
    }

    fn set(&mut self, seconds: f64, now: Instant) {
        self.base = clamp_position(seconds, self.duration);
        if self.since.is_some() {
            self.since = Some(now);
        }
    }
}

/// `seconds` limited to `[0, duration]`; NaN counts as 0.
fn clamp_position(seconds: f64, duration: f64) -> f64 {
    if seconds.is_nan() {
        0.0
    } else {
        seconds.clamp(0.0, duration.max(0.0))
    }
}

/// State shared with the output callback.
#[derive(Debug)]
struct Shared {
    /// Mono samples at the device rate (empty for a silent player); each is sent to every
    /// channel.
    samples: Vec<f32>,
    /// Channels per device frame.
    channels: usize,
    /// Frames per second of `samples`.
    rate: u32,
    /// Index in `samples` of the next frame to send.
    cursor: AtomicUsize,
    /// Whether the callback sends audio (otherwise silence).
    playing: AtomicBool,
    /// Why the player is silent, set once.
    warning: OnceLock<String>,
}

impl Shared {
    fn new(samples: Vec<f32>, channels: usize, rate: u32) -> Self {
        Self {
            samples,
            channels: channels.max(1),
            rate,
            cursor: AtomicUsize::new(0),
            playing: AtomicBool::new(false),
            warning: OnceLock::new(),
        }
    }

    /// Moves the cursor to the frame at `seconds`.
    fn seek(&self, seconds: f64) {
        let frame = (seconds * self.rate as f64).round() as usize;
        self.cursor
            .store(frame.min(self.samples.len()), Ordering::Release);
    }

    /// Fills one interleaved device buffer from the cursor (silence when paused or past the end).
    fn fill<T: Sample + FromSample<f32>>(&self, data: &mut [T]) {
        let start = self.cursor.load(Ordering::Acquire);
        let n = if self.playing.load(Ordering::Acquire) {
            let frames = data.len() / self.channels;
            self.samples.len().saturating_sub(start).min(frames)
        } else {
            0
        };
        let (sound, rest) = data.split_at_mut(n * self.channels);
        for (frame, &s) in sound
            .chunks_exact_mut(self.channels)
            .zip(&self.samples[start..start + n])
        {
            frame.fill(T::from_sample(s));
        }
        rest.fill(T::EQUILIBRIUM);
        // A seek between the load and here wins.
        let _ = self
            .cursor
            .compare_exchange(start, start + n, Ordering::AcqRel, Ordering::Acquire);
    }
}

/// Keeps the output callback from running more than [`MAX_LEAD`] ahead of real time.
struct Pacer {
    rate: f64,
    start: Option<Instant>,
    frames: u64,
}

impl Pacer {
    fn pace(&mut self, frames: usize) {
        let now = Instant::now();
        let start = *self.start.get_or_insert(now);
        let ahead = self.frames as f64 / self.rate - now.duration_since(start).as_secs_f64();
        if ahead > MAX_LEAD {
            std::thread::sleep(Duration::from_secs_f64(ahead - MAX_LEAD).min(MAX_WAIT));
        }
        self.frames += frames as u64;
    }
}

/// An open output stream with what it was opened with.
struct Output {
    stream: cpal::Stream,
    info: OutputInfo,
}

/// Plays one clip: play, pause, resume, seek, stop, and a playhead for the UI.
pub struct Player {
    shared: Arc<Shared>,
    output: Option<Output>,
    clock: Clock,
    stopped: bool,
    warning_taken: bool,
}

impl std::fmt::Debug for Player {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Player")
            .field("output", &self.output.as_ref().map(|o| &o.info))
            .field("clock", &self.clock)
            .field("warning", &self.warning())
            .finish()
    }
}

impl Player {
    /// A player for `clip` on the default output device, or a silent one (with a warning) when the
    /// device is missing or cannot be opened. The stream starts with [`Player::play`].
    pub fn new(clip: &Clip) -> Player {
        match open_output(clip) {
            Ok((shared, output)) => Player {
                shared,
                output: Some(output),
                clock: Clock::new(clip.seconds()),
                stopped: true,
                warning_taken: false,
            },
            Err(reason) => Player::silent(clip, reason),
        }
    }

    /// A player that never opens a device: its clock runs as usual and [`Player::warning`] gives
    /// `reason`.
    pub fn silent(clip: &Clip, reason: impl Into<String>) -> Player {
        let shared = Shared::new(Vec::new(), 1, clip.sample_rate);
        let _ = shared.warning.set(reason.into());
        Player {
            shared: Arc::new(shared),
            output: None,
            clock: Clock::new(clip.seconds()),
            stopped: true,
            warning_taken: false,
        }
    }

    /// Starts or resumes playback; from the end of the clip it starts over.
    pub fn play(&mut self) {
        let now = Instant::now();
        if self.state_at(now) == PlayerState::Finished {
            self.clock.set(0.0, now);
            self.shared.seek(0.0);
        }
        self.stopped = false;
        if let Some(output) = &self.output {
            self.shared.playing.store(true, Ordering::Release);
            if let Err(e) = output.stream.play() {
                self.fail(format!(
                    "cannot start audio output on {}: {e}",
                    output.info.device
                ));
            }
        }
        self.clock.start(now);
    }

    /// Holds the playhead where it is; the device gets silence.
    pub fn pause(&mut self) {
        self.shared.playing.store(false, Ordering::Release);
        self.clock.hold(Instant::now());
    }

    /// Continues after [`Player::pause`]; the same as [`Player::play`].
    pub fn resume(&mut self) {
        self.play();
    }

    /// Moves the playhead to `seconds` (clamped to the clip), playing or not.
    pub fn seek(&mut self, seconds: f64) {
        let now = Instant::now();
        self.clock.set(seconds, now);
        self.shared.seek(self.clock.base);
        if !self.clock.running() && self.clock.base > 0.0 {
            self.stopped = false;
        }
    }

    /// Stops and rewinds to the start.
    pub fn stop(&mut self) {
        self.pause();
        self.clock.set(0.0, Instant::now());
        self.shared.seek(0.0);
        self.stopped = true;
    }

    /// The playhead in seconds, in `[0, duration]`.
    pub fn position(&self) -> f64 {
        self.clock.position_at(Instant::now())
    }

    /// The clip's length in seconds.
    pub fn duration(&self) -> f64 {
        self.clock.duration
    }

    /// What the player is doing now.
    pub fn state(&self) -> PlayerState {
        self.state_at(Instant::now())
    }

    fn state_at(&self, now: Instant) -> PlayerState {
        let at_end = self.clock.position_at(now) >= self.clock.duration;
        match (self.clock.running(), at_end, self.stopped) {
            (_, true, false) | (true, true, _) => PlayerState::Finished,
            (true, false, _) => PlayerState::Playing,
            (false, _, true) => PlayerState::Stopped,
            (false, false, false) => PlayerState::Paused,
        }
    }

    /// Why the player is silent (no device, open failure, or a failure while playing), if it is.
    pub fn warning(&self) -> Option<&str> {
        self.shared.warning.get().map(String::as_str)
    }

    /// The warning the first time it is asked for after it appears, then `None`: for callers that
    /// show it once.
    pub fn take_warning(&mut self) -> Option<String> {
        if self.warning_taken {
            return None;
        }
        let w = self.shared.warning.get().cloned();
        self.warning_taken = w.is_some();
        w
    }

    /// True when no audio reaches a device (the clock still runs).
    pub fn is_silent(&self) -> bool {
        self.output.is_none() || self.shared.warning.get().is_some()
    }

    /// The device and format in use; `None` for a silent player.
    pub fn output_info(&self) -> Option<&OutputInfo> {
        self.output.as_ref().map(|o| &o.info)
    }

    /// How long audio sent to the device takes to be heard (its buffer), zero when silent: wait this
    /// long after [`PlayerState::Finished`] before dropping the player to hear the clip's end.
    pub fn latency(&self) -> Duration {
        match &self.output {
            Some(o) if !self.is_silent() => o
                .stream
                .buffer_size()
                .map(|frames| {
                    Duration::from_secs_f64(frames as f64 / self.shared.rate.max(1) as f64)
                })
                .unwrap_or_default()
                .min(Duration::from_secs(1)),
            _ => Duration::ZERO,
        }
    }

    fn fail(&mut self, reason: String) {
        let _ = self.shared.warning.set(with_alsa_messages(reason));
    }
}

impl Drop for Player {
    fn drop(&mut self) {
        self.shared.playing.store(false, Ordering::Release);
    }
}

/// Opens the default output device for `clip`: converts the clip to the device's rate and channel
/// count and builds a stream that is not started yet.
fn open_output(clip: &Clip) -> Result<(Arc<Shared>, Output), String> {
    alsa_log::install();
    alsa_log::take();
    let host = cpal::default_host();
    let device = host
        .default_output_device()
        .ok_or_else(|| with_alsa_messages("no audio output device".into()))?;
    let name = device
        .description()
        .map(|d| d.name().to_string())
        .unwrap_or_else(|_| "default".into());
    let supported = device
        .default_output_config()
        .map_err(|e| with_alsa_messages(format!("cannot use audio output device {name}: {e}")))?;
    let rate = supported.sample_rate();
    let channels = supported.channels();
    let mono = resample(&clip.samples, clip.sample_rate, rate).map_err(|e| e.to_string())?;
    let shared = Arc::new(Shared::new(mono, channels as usize, rate));
    let config = supported.config();
    let format = supported.sample_format();
    let stream = match format {
        SampleFormat::F32 => build::<f32>(&device, &config, &shared),
        SampleFormat::F64 => build::<f64>(&device, &config, &shared),
        SampleFormat::I8 => build::<i8>(&device, &config, &shared),
        SampleFormat::I16 => build::<i16>(&device, &config, &shared),
        SampleFormat::I24 => build::<cpal::I24>(&device, &config, &shared),
        SampleFormat::I32 => build::<i32>(&device, &config, &shared),
        SampleFormat::U8 => build::<u8>(&device, &config, &shared),
        SampleFormat::U16 => build::<u16>(&device, &config, &shared),
        SampleFormat::U24 => build::<cpal::U24>(&device, &config, &shared),
        SampleFormat::U32 => build::<u32>(&device, &config, &shared),
        other => {
            return Err(format!(
                "audio output device {name} wants sample format {other}, which is not supported"
            ))
        }
    }
    .map_err(|e| with_alsa_messages(format!("cannot open audio output on {name}: {e}")))?;
    let info = OutputInfo {
        device: name,
        sample_rate: rate,
        channels,
        sample_format: format.to_string(),
    };
    Ok((shared, Output { stream, info }))
}

/// Builds the output stream for one sample type.
fn build<T: SizedSample + FromSample<f32>>(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    shared: &Arc<Shared>,
) -> Result<cpal::Stream, cpal::Error> {
    let data = Arc::clone(shared);
    let errors = Arc::clone(shared);
    let mut pacer = Pacer {
        rate: shared.rate.max(1) as f64,
        start: None,
        frames: 0,
    };
    device.build_output_stream::<T, _, _>(
        *config,
        move |buf: &mut [T], _| {
            pacer.pace(buf.len() / data.channels);
            data.fill(buf);
        },
        move |e| {
            let _ = errors.warning.set(with_alsa_messages(format!(
                "audio output failed while playing: {e}"
            )));
        },
        None,
    )
}

/// `reason` followed by what libasound reported since the last call (the first and last report),
/// if anything.
fn with_alsa_messages(reason: String) -> String {
    let mut messages = alsa_log::take();
    if messages.len() > 2 {
        // The first report is usually the cause, the last what failed in the end.
        messages.drain(1..messages.len() - 1);
        messages.insert(1, "...".into());
    }
    if messages.is_empty() {
        reason
    } else {
        format!("{reason} (ALSA: {})", messages.join("; "))
    }
}

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod alsa_log {
    //! Keeps libasound's error reports off stderr (they would garble a full-screen UI) and keeps
    //! their text for the player's warning.

    use std::ffi::{c_char, c_int, CStr};
    use std::sync::{Mutex, Once};

    /// Reports kept until [`take`]; the oldest are dropped past [`MAX_MESSAGES`].
    static MESSAGES: Mutex<Vec<String>> = Mutex::new(Vec::new());
    const MAX_MESSAGES: usize = 16;

    /// Installs the handler once per process.
    pub fn install() {
        static INSTALL: Once = Once::new();
        INSTALL.call_once(|| {
            let f: Handler = handler;
            // SAFETY: see `handler`: on the targets this module is built for, a function with
            // these word-sized parameters receives the variadic call's first arguments.
            unsafe {
                let h: alsa_sys::snd_lib_error_handler_t = Some(std::mem::transmute::<
                    Handler,
                    unsafe extern "C" fn(
                        *const c_char,
                        c_int,
                        *const c_char,
                        c_int,
                        *const c_char,
                        ...
                    ),
                >(f));
                alsa_sys::snd_lib_error_set_handler(h);
            }
        });
    }

    /// The reports received since the last call.
    pub fn take() -> Vec<String> {
        MESSAGES
            .lock()
            .map(|mut m| std::mem::take(&mut *m))
            .unwrap_or_default()
    }

    type Handler = unsafe extern "C" fn(
        *const c_char,
        c_int,
        *const c_char,
        c_int,
        *const c_char,
        usize,
        usize,
        usize,
        usize,
    );

    /// Receives libasound's reports. libasound declares its handler variadic
    /// (`file, line, function, err, fmt, ...`), which stable Rust cannot define. On x86-64 System V
    /// and AArch64 Linux, variadic integer and pointer arguments travel in the same registers and
    /// stack slots as further ordinary parameters would, so the first four of them arrive in
    /// `a0..a3`. A slot the caller did not fill holds an unrelated word; the formatter only reads
    /// the slots `fmt` names, as `printf` would.
    unsafe extern "C" fn handler(
        _file: *const c_char,
        _line: c_int,
        function: *const c_char,
        err: c_int,
        fmt: *const c_char,
        a0: usize,
        a1: usize,
        a2: usize,
        a3: usize,
    ) {
        let _ = std::panic::catch_unwind(|| {
            // SAFETY: libasound passes NUL-terminated strings (or NULL) and the arguments `fmt`
            // describes.
            let text = unsafe { format_report(function, err, fmt, [a0, a1, a2, a3]) };
            if let Ok(mut m) = MESSAGES.try_lock() {
                if m.len() == MAX_MESSAGES {
                    m.remove(0);
                }
                m.push(text);
            }
        });
    }

    /// `function: message[: strerror(err)]`.
    unsafe fn format_report(
        function: *const c_char,
        err: c_int,
        fmt: *const c_char,
        args: [usize; 4],
    ) -> String {
        let mut out = String::new();
        if !function.is_null() {
            out.push_str(&unsafe { CStr::from_ptr(function) }.to_string_lossy());
            out.push_str(": ");
        }
        if !fmt.is_null() {
            let fmt = unsafe { CStr::from_ptr(fmt) }.to_string_lossy();
            out.push_str(&unsafe { printf(&fmt, &args) });
        }
        if err != 0 {
            // SAFETY: snd_strerror returns a static string.
            let e = unsafe { alsa_sys::snd_strerror(err) };
            if !e.is_null() {
                out.push_str(": ");
                out.push_str(&unsafe { CStr::from_ptr(e) }.to_string_lossy());
            }
        }
        out
    }

    /// A small `printf`: integer, character and string conversions take the next word of `args`;
    /// floating-point ones (passed in other registers) and conversions past the fourth word print
    /// `?`.
    unsafe fn printf(fmt: &str, args: &[usize]) -> String {
        let mut out = String::new();
        let mut next = args.iter().copied();
        let mut chars = fmt.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            // Flags, width, precision, length: skip, but a `*` takes a word.
            let mut long = false;
            let conv = loop {
                match chars.next() {
                    Some('*') => {
                        next.next();
                    }
                    Some('l') | Some('z') | Some('j') | Some('t') | Some('q') => long = true,
                    Some(c) if "-+ #0123456789.hL".contains(c) => {}
                    other => break other,
                }
            };
            match conv {
                Some('%') => out.push('%'),
                Some('d') | Some('i') => match next.next() {
                    Some(w) if long => out.push_str(&(w as i64).to_string()),
                    Some(w) => out.push_str(&(w as u32 as i32).to_string()),
                    None => out.push('?'),
                },
                Some('u') => match next.next() {
                    Some(w) if long => out.push_str(&w.to_string()),
                    Some(w) => out.push_str(&(w as u32).to_string()),
                    None => out.push('?'),
                },
                Some('x') | Some('X') | Some('p') => match next.next() {
                    Some(w) if long || conv == Some('p') => out.push_str(&format!("{w:#x}")),
                    Some(w) => out.push_str(&format!("{:#x}", w as u32)),
                    None => out.push('?'),
                },
                Some('c') => match next.next() {
                    Some(w) => out.push(char::from(w as u8)),
                    None => out.push('?'),
                },
                Some('s') => match next.next() {
                    Some(0) => out.push_str("(null)"),
                    // SAFETY: `%s` means the caller passed a NUL-terminated string here.
                    Some(w) => out
                        .push_str(&unsafe { CStr::from_ptr(w as *const c_char) }.to_string_lossy()),
                    None => out.push('?'),
                },
                Some(_) => out.push('?'),
                None => break,
            }
        }
        out
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn formats_like_printf() {
            let name = c"hw:7";
            let args = [name.as_ptr() as usize, (-5i32) as u32 as usize, 42, 0];
            let s = unsafe { printf("Unknown PCM %s, err %d, %lu%% of %s", &args) };
            assert_eq!(s, "Unknown PCM hw:7, err -5, 42% of (null)");
            let s = unsafe { printf("%5.2f then %s", &[0, 0, 0, 0]) };
            assert_eq!(s, "? then (null)");
        }
    }
}

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
mod alsa_log {
    //! Other platforms: the audio backends do not write to stderr.

    /// Nothing to install.
    pub fn install() {}

    /// No reports are collected.
    pub fn take() -> Vec<String> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn clip(seconds: f64) -> Clip {
        let n = (seconds * 16_000.0) as usize;
        Clip {
            samples: vec![0.25; n],
            sample_rate: 16_000,
            source: PathBuf::from("test.wav"),
            source_seconds: seconds,
            truncated: false,
            ends_early: false,
            warnings: Vec::new(),
        }
    }

    #[test]
    fn clock_runs_holds_and_caps() {
        let t0 = Instant::now();
        let at = |s: f64| t0 + Duration::from_secs_f64(s);
        let mut c = Clock::new(2.0);
        assert_eq!(c.position_at(at(5.0)), 0.0);
        c.start(at(0.0));
        assert_eq!(c.position_at(at(0.5)), 0.5);
        c.hold(at(0.75));
        assert_eq!(c.position_at(at(9.0)), 0.75);
        c.set(1.5, at(9.0));
        c.start(at(10.0));
        assert_eq!(c.position_at(at(10.25)), 1.75);
        // Capped at the duration.
        assert_eq!(c.position_at(at(60.0)), 2.0);
        // Seeking while running restarts the run from the new position.
        c.set(0.5, at(11.0));
        assert_eq!(c.position_at(at(11.5)), 1.0);
        c.set(-3.0, at(12.0));
        assert_eq!(c.position_at(at(12.0)), 0.0);
        c.set(f64::NAN, at(12.0));
        assert_eq!(c.position_at(at(12.0)), 0.0);
        c.set(7.0, at(12.0));
        assert_eq!(c.position_at(at(12.0)), 2.0);
    }

    #[test]
    fn silent_player_controls() {
        let mut p = Player::silent(&clip(2.0), "no device here");
        assert_eq!(p.warning(), Some("no device here"));
        assert!(p.is_silent());
        assert_eq!(p.duration(), 2.0);
        assert_eq!(p.state(), PlayerState::Stopped);
        assert_eq!(p.position(), 0.0);
        p.seek(1.25);
        assert_eq!(p.state(), PlayerState::Paused);
        assert_eq!(p.position(), 1.25);
        p.play();
        assert_eq!(p.state(), PlayerState::Playing);
        std::thread::sleep(Duration::from_millis(20));
        p.pause();
        let held = p.position();
        assert!(held >= 1.27, "the clock advanced while playing: {held}");
        assert_eq!(p.state(), PlayerState::Paused);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(p.position(), held);
        p.seek(5.0);
        assert_eq!(p.position(), 2.0);
        assert_eq!(p.state(), PlayerState::Finished);
        // Playing from the end starts over.
        p.play();
        assert!(p.position() < 2.0);
        assert_eq!(p.state(), PlayerState::Playing);
        p.stop();
        assert_eq!(p.state(), PlayerState::Stopped);
        assert_eq!(p.position(), 0.0);
        assert_eq!(p.take_warning().as_deref(), Some("no device here"));
        assert_eq!(p.take_warning(), None);
        assert_eq!(p.warning(), Some("no device here"));
    }

    #[test]
    fn silent_player_finishes() {
        let mut p = Player::silent(&clip(0.01), "none");
        p.play();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(p.position(), 0.01);
        assert_eq!(p.state(), PlayerState::Finished);
        let mut empty = Player::silent(&clip(0.0), "none");
        empty.play();
        assert_eq!(empty.state(), PlayerState::Finished);
    }

    #[test]
    fn fill_sends_the_clip_then_silence() {
        let shared = Shared::new(vec![0.5, -0.5, 1.0], 2, 3);
        let mut buf = [7i16; 4];
        shared.fill(&mut buf);
        assert_eq!(buf, [0; 4], "silence before play");
        shared.playing.store(true, Ordering::Release);
        shared.fill(&mut buf);
        assert_eq!(buf, [16384, 16384, -16384, -16384]);
        shared.fill(&mut buf);
        assert_eq!(buf, [i16::MAX, i16::MAX, 0, 0]);
        shared.seek(1.0 / 3.0);
        let mut fbuf = [9f32; 2];
        shared.fill(&mut fbuf);
        assert_eq!(fbuf, [-0.5, -0.5]);
        shared.seek(100.0);
        shared.fill(&mut fbuf);
        assert_eq!(fbuf, [0.0, 0.0]);
    }
}
