// hls.js's light build (no subtitles, alternate audio, DRM or CMCD: a live camera needs none of
// them) has the full build's API but ships no types of its own.
declare module 'hls.js/light' {
  export * from 'hls.js';
  export { default } from 'hls.js';
}
