/**
 * How a new alert gets attention besides its toast: a short beep (Web Audio, no file to load) and
 * a browser notification when the user allowed them. Both fail silently: a browser that blocks
 * audio before a user gesture, or has no Notification API, still shows the toast.
 */
let audio: AudioContext | null = null;

/**
 * Makes the audio context during a user gesture (the sign-in click): browsers let a page play sound
 * only after one, and making it there keeps its cost off the first alert.
 */
export function unlockAudio(): void {
  try {
    audio ??= new AudioContext();
    if (audio.state === 'suspended') void audio.resume();
  } catch {
    // no audio
  }
}

export function beep(): void {
  try {
    audio ??= new AudioContext();
    const ctx = audio;
    if (ctx.state === 'suspended') void ctx.resume();
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.type = 'sine';
    osc.frequency.value = 880;
    gain.gain.setValueAtTime(0.0001, ctx.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.2, ctx.currentTime + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, ctx.currentTime + 0.25);
    osc.connect(gain).connect(ctx.destination);
    osc.start();
    osc.stop(ctx.currentTime + 0.3);
  } catch {
    // no audio: the toast is enough
  }
}

export function canAskNotifications(): boolean {
  return typeof Notification !== 'undefined' && Notification.permission === 'default';
}

export async function askNotifications(): Promise<void> {
  if (typeof Notification !== 'undefined') await Notification.requestPermission().catch(() => 'denied');
}

export function notify(title: string, body: string, tag: string): void {
  if (typeof Notification === 'undefined' || Notification.permission !== 'granted') return;
  try {
    new Notification(title, { body, tag });
  } catch {
    // some mobile browsers only allow notifications from a service worker
  }
}
