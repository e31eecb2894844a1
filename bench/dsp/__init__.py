"""RF signal processing for the UHF downlink: what the bench does with a signal analyzer's IQ capture.

The satellite's UHF radio sends AX.25 UI frames at 9600 bit/s, G3RUH-scrambled, as GMSK (or 2-FSK) near
437 MHz. The analyzer hands the bench complex baseband samples (IQ) around the carrier; everything after
that is here, in plain numpy (scipy is imported lazily, inside the functions that need it):

* :mod:`bench.dsp.spectrum` — Welch PSD, channel power, frequency error, 99 % occupied bandwidth, mask check.
* :mod:`bench.dsp.ax25` — AX.25 v2.2 UI frames: addresses, control/PID, the CRC-16/X.25 frame check sequence.
* :mod:`bench.dsp.hdlc` — bit level: LSB-first bytes, bit stuffing, flags, NRZI, G3RUH (de)scrambler, deframing.
* :mod:`bench.dsp.modem` — GMSK/2-FSK modulator (uplink/simulated downlink waveforms, offset, AWGN) and the
  demodulator with clock recovery, plus the frame-level pipeline :func:`bench.dsp.modem.decode_ax25_frames`.
* :mod:`bench.dsp.ber` — PRBS9/PRBS15 bit-error rate with pattern synchronisation, frame-error rate.
"""
