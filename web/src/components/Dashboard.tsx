import type { RefObject } from 'react';
import type { ConsoleState } from '../hooks/useConsole';
import { useI18n } from '../i18n';
import { deviceWarnings } from '../state/devices';
import { warningText } from './warnings';
import type { DeviceView, EventItem } from '../types/protocol';
import { CameraTiles } from './CameraTiles';
import { errorText } from './errors';

export function Dashboard({
  state,
  onOpen,
  headingRef,
}: {
  state: ConsoleState;
  onOpen: (e: EventItem) => void;
  headingRef: RefObject<HTMLHeadingElement | null>;
}) {
  const i18n = useI18n();
  const { t } = i18n;
  return (
    <>
      <h1 ref={headingRef} tabIndex={-1}>
        {t('nav.dashboard')}
      </h1>
      <section aria-labelledby="devices-title">
        <h2 id="devices-title">{t('devices.title')}</h2>
        {state.devicesError != null && (
          <p className="error" role="alert">
            {errorText(state.devicesError, t)}
          </p>
        )}
        {state.devices.length === 0 && state.devicesError == null && <p>{t('devices.none')}</p>}
        <ul className="devices">
          {state.devices.map((d) => (
            <DeviceCard key={d.id} device={d} />
          ))}
        </ul>
      </section>
      <section aria-labelledby="alerts-title" id="alerts" tabIndex={-1}>
        <h2 id="alerts-title">{t('alerts.title')}</h2>
        {state.alerts.unacked.length === 0 ? (
          <p>{t('alerts.none')}</p>
        ) : (
          <ul className="alert-list">
            {state.alerts.unacked.slice(0, 50).map(({ event }) => (
              <li key={event.id} data-event-id={event.id}>
                <span>
                  <strong>{i18n.kind(event.kind)}</strong> · {event.device} ({event.sensor}) · {i18n.time(event.corrected_at)}
                </span>
                <span className="actions">
                  <button type="button" onClick={() => onOpen(event)}>
                    {t('alerts.details')}
                  </button>
                  <button
                    type="button"
                    className="primary"
                    aria-label={t('alerts.acknowledgeOne', { what: `${i18n.kind(event.kind)} ${event.device} ${i18n.time(event.corrected_at)}` })}
                    onClick={() => void state.acknowledge(event.id).catch(() => {})}
                  >
                    {t('alerts.acknowledge')}
                  </button>
                </span>
              </li>
            ))}
          </ul>
        )}
      </section>
      <CameraTiles api={state.api} guard={state.guard} refreshKey={state.media.cameras} />
    </>
  );
}

function DeviceCard({ device: d }: { device: DeviceView }) {
  const i18n = useI18n();
  const { t } = i18n;
  const online = d.state === 'online';
  const warnings = deviceWarnings(d).filter((w) => w.kind !== 'offline');
  const clock = !d.clock_synced
    ? t('devices.clockNotSynced')
    : d.clock_offset_ms != null
      ? t('devices.clockOffset', { offset: d.clock_offset_ms })
      : t('devices.clockSynced');
  const api = d.api_reachable == null ? t('devices.apiUnknown') : d.api_reachable ? t('devices.apiReachable') : t('devices.apiUnreachable');
  return (
    <li className={`card device ${online ? 'online' : 'offline'}`} data-device={d.id} aria-labelledby={`dev-${d.id}`}>
      <h3 id={`dev-${d.id}`}>
        {d.id} <span className={`badge ${online ? 'ok' : 'bad'}`}>{online ? t('devices.online') : d.state === 'offline' ? t('devices.offline') : d.state}</span>
      </h3>
      <dl>
        <dt>{t('devices.lastSeen')}</dt>
        <dd>{i18n.time(d.last_seen)}</dd>
        <dt>{t('devices.queue')}</dt>
        <dd>{t('devices.queueValue', { count: d.queue_depth })}</dd>
        <dt>{t('devices.clock')}</dt>
        <dd>{clock}</dd>
        <dt>{t('devices.api')}</dt>
        <dd>{api}</dd>
      </dl>
      <p className="muted">{t('devices.acked', { seq: d.acked_seq })}</p>
      {warnings.length > 0 && (
        <ul className="warnings" aria-label={`${d.id}: ${warnings.length}`}>
          {warnings.map((w) => (
            <li key={w.kind} className="warning">
              <span aria-hidden="true">⚠ </span>
              {warningText(w, i18n)}
            </li>
          ))}
        </ul>
      )}
    </li>
  );
}

