// The console's wire types against the committed JSON Schema (`protocol/schema/*.json`): a field
// added, removed or made optional on the Rust side fails here until web/src/types follows.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as p from './protocol';

const schemaDir = fileURLToPath(new URL('../../../protocol/schema/', import.meta.url));

interface ObjectSchema {
  properties: Record<string, unknown>;
  required?: string[];
  oneOf?: { properties: { type: { const: string } } }[];
  $defs?: Record<string, ObjectSchema>;
}

function schema(name: string): ObjectSchema {
  return JSON.parse(readFileSync(`${schemaDir}${name}.json`, 'utf8')) as ObjectSchema;
}

/**
 * Optional fields the console does not read yet, each with the reason: they may come and go in the
 * schema without failing this test. Anything else the schema has must be in the TypeScript type.
 */
const NOT_READ: Record<string, Record<string, string>> = {};

function shapeOf(s: ObjectSchema, name = ''): Record<string, 'required' | 'optional'> {
  const required = new Set(s.required ?? []);
  const skipped = NOT_READ[name] ?? {};
  return Object.fromEntries(
    Object.keys(s.properties)
      .filter((k) => !(k in skipped && !required.has(k)))
      .sort()
      .map((k) => [k, required.has(k) ? 'required' : 'optional']),
  );
}

function sorted(shape: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(shape).sort(([a], [b]) => a.localeCompare(b)));
}

describe('web/src/types mirror protocol/schema', () => {
  const cases: [string, Record<string, string>][] = [
    ['event_item', p.eventItemShape],
    ['event_page', p.eventPageShape],
    ['device_view', p.deviceViewShape],
    ['gap_record', p.gapRecordShape],
    ['login_request', p.loginRequestShape],
    ['token_response', p.tokenResponseShape],
    ['refresh_request', p.refreshRequestShape],
    ['api_error', p.apiErrorShape],
    ['clock_reading', p.clockReadingShape],
    ['camera_view', p.cameraViewShape],
    ['snapshot_page', p.snapshotPageShape],
    ['clip_view', p.clipViewShape],
    ['event_media', p.eventMediaShape],
  ];
  it.each(cases)('%s has the same fields, required alike', (name, shape) => {
    expect(sorted(shape)).toEqual(shapeOf(schema(name), name));
  });

  it('the stream frame types are the schema’s, each carrying the payload the console expects', () => {
    const frame = schema('stream_frame');
    const types = (frame.oneOf ?? []).map((v) => v.properties.type.const);
    expect(types.sort()).toEqual([...p.FRAME_TYPES].sort());
    const defs = frame.$defs ?? {};
    expect(sorted(p.eventItemShape)).toEqual(shapeOf(defs.EventItem!));
    expect(sorted(p.deviceViewShape)).toEqual(shapeOf(defs.DeviceView!));
    expect(sorted(p.gapRecordShape)).toEqual(shapeOf(defs.GapRecord!));
    expect(sorted(p.mediaReadyShape)).toEqual(shapeOf(defs.MediaReady!));
    expect(sorted(p.securityCountsShape)).toEqual(shapeOf(defs.SecurityCounts!));
  });

  it('the attack telemetry nested in a device view is the schema’s', () => {
    expect(sorted(p.securityCountsShape)).toEqual(shapeOf(schema('device_view').$defs!.SecurityCounts!));
  });

  it('the views nested in the media answers are the same snapshot and clip everywhere', () => {
    expect(sorted(p.snapshotViewShape)).toEqual(shapeOf(schema('camera_view').$defs!.SnapshotView!));
    expect(sorted(p.snapshotViewShape)).toEqual(shapeOf(schema('snapshot_page').$defs!.SnapshotView!));
    const media = schema('event_media').$defs!;
    expect(sorted(p.snapshotViewShape)).toEqual(shapeOf(media.SnapshotView!));
    expect(sorted(p.clipViewShape)).toEqual(shapeOf(media.ClipView!));
  });

  it('the known event kinds are the schema’s', () => {
    const kind = schema('event_item').$defs?.EventKind as unknown as { examples: string[] };
    expect([...p.KNOWN_KINDS].sort()).toEqual([...kind.examples].sort());
  });
});
