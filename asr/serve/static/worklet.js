// AudioWorklet: resample the microphone to the model's rate (linear interpolation after a
// one-pole low-pass) and post 16-bit PCM blocks of ~100 ms to the page.
class PcmWorklet extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.outRate = options.processorOptions.outRate;
    this.ratio = sampleRate / this.outRate;
    this.pos = 0; this.prev = 0; this.lp = 0;
    this.alpha = Math.min(1, this.outRate / sampleRate * 1.2);
    this.block = []; this.blockSize = Math.round(this.outRate / 10);
  }
  process(inputs) {
    const input = inputs[0] && inputs[0][0];
    if (!input) return true;
    for (let i = 0; i < input.length; i++) {
      const x = this.lp = this.lp + this.alpha * (input[i] - this.lp);
      while (this.pos <= 1) {
        const y = this.prev + (x - this.prev) * this.pos;
        this.block.push(Math.max(-1, Math.min(1, y)));
        this.pos += this.ratio;
      }
      this.pos -= 1; this.prev = x;
    }
    if (this.block.length >= this.blockSize) {
      const pcm = new Int16Array(this.block.length);
      for (let i = 0; i < pcm.length; i++) pcm[i] = this.block[i] * 32767;
      this.port.postMessage(pcm.buffer, [pcm.buffer]);
      this.block = [];
    }
    return true;
  }
}
registerProcessor('pcm-worklet', PcmWorklet);
