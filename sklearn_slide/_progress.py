"""What ``verbose`` prints while a model trains.

``verbose=1``: progress within each epoch (samples done, samples/s, running
loss, time left), then one summary line per epoch.  On a terminal the progress
is one line rewritten in place; elsewhere (a log file, a notebook's captured
output, a pipe) it is a plain line every ``PLAIN_LINE_SECONDS`` seconds, so
short epochs print only their summary.  ``verbose=2`` adds a line for every
rehash of the hash tables.

Nothing here touches the model: ``_training`` calls these methods between
engine calls.
"""

import sys
import time

# Seconds between two progress lines when the output is not a terminal.
PLAIN_LINE_SECONDS = 10.0

# Seconds between two redraws of the terminal line (redrawing costs a write).
REDRAW_SECONDS = 0.2


def _duration(seconds):
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class EpochProgress:
    """Progress report of one epoch of ``n_samples`` rows.

    Parameters
    ----------
    epoch : int
        Number of the epoch (1-based, counting earlier fits of the model).
    n_samples : int
        Rows the epoch trains on.
    verbose : int
        The estimator's ``verbose``.
    stream : file object, default=None
        Where to write; None is ``sys.stdout`` at the time of the call.
    clock : callable, default=time.perf_counter
        Seconds; tests pass a fake clock.
    """

    def __init__(self, epoch, n_samples, verbose, stream=None, clock=time.perf_counter):
        self.epoch = epoch
        self.n_samples = n_samples
        self.verbose = verbose
        self.stream = sys.stdout if stream is None else stream
        self.clock = clock
        isatty = getattr(self.stream, "isatty", None)
        self.terminal = bool(isatty and isatty())
        self.start = self.last_shown = clock()
        self.done = 0
        self.loss_sum = 0.0
        self.n_labelled = 0
        self.line_width = 0  # of the terminal line drawn last, to blank it

    def update(self, stats):
        """Add the statistics of the rows just trained (a ``train_epoch`` result)."""
        self.done += int(stats["n_samples"])
        self.loss_sum += float(stats["loss_sum"])
        self.n_labelled += int(stats["n_labelled"])
        now = self.clock()
        due = REDRAW_SECONDS if self.terminal else PLAIN_LINE_SECONDS
        if self.done < self.n_samples and now - self.last_shown >= due:
            self.last_shown = now
            self._show(self.progress_line(now))

    def progress_line(self, now):
        elapsed = max(now - self.start, 1e-9)
        rate = self.done / elapsed
        left = (self.n_samples - self.done) / rate if rate > 0 else float("inf")
        loss = self.loss_sum / max(self.n_labelled, 1)
        return (
            f"Epoch {self.epoch}: {self.done:,}/{self.n_samples:,} samples "
            f"({100 * self.done / max(self.n_samples, 1):.0f}%), {rate:,.0f} samples/s, "
            f"loss {loss:.4f}, ETA {_duration(left) if left != float('inf') else '?'}"
        )

    def rehashed(self, number, step, new_functions, next_step, seconds=None):
        """With ``verbose >= 2``: a line for rehash ``number`` of the hash tables.

        ``step``: the Adam step before which it ran; ``seconds``: the
        estimated time of the rebuild, if known.
        """
        if self.verbose < 2:
            return
        details = ["new hash functions"] if new_functions else []
        if seconds is not None:
            details.append(f"{seconds:.2f} s")
        self._show(
            f"  rehash #{number} of the hash tables at Adam step {step:,}"
            + (f" ({', '.join(details)})" if details else "")
            + f"; next at step {next_step:,}",
            permanent=True,
        )

    def finish(self, summary):
        """Replace the progress with the epoch's summary line."""
        self._show(summary, permanent=True)

    def _show(self, line, permanent=False):
        if self.terminal:
            # Blank the previous terminal line, then draw; a permanent line ends it.
            self.stream.write("\r" + " " * self.line_width + "\r" + line
                              + ("\n" if permanent else ""))
            self.line_width = 0 if permanent else len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
