/**
 * Event history: filters (device, kind, time range), then cursor pages appended as the list scrolls
 * (an IntersectionObserver on the end of the list, and a button for keyboards). A row opens the
 * event's detail.
 */
import { useCallback, useEffect, useRef, useState, type FormEvent, type RefObject } from 'react';
import type { ConsoleState } from '../hooks/useConsole';
import { useI18n } from '../i18n';
import type { MessageKey } from '../i18n/messages';
import { appendPage, emptyFilters, emptyHistory, filtersToQuery, prependLive, type HistoryFilters, type HistoryState } from '../state/history';
import { KNOWN_KINDS, type EventItem } from '../types/protocol';
import { errorText } from './errors';

export function History({
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
  const [draft, setDraft] = useState<HistoryFilters>(emptyFilters);
  const [filters, setFilters] = useState<HistoryFilters>(emptyFilters);
  const [history, setHistory] = useState<HistoryState>(emptyHistory);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const generation = useRef(0);
  const sentinel = useRef<HTMLDivElement>(null);
  const { api, guard } = state;

  const load = useCallback(
    async (from: HistoryState, f: HistoryFilters) => {
      const mine = ++generation.current;
      setLoading(true);
      setError(null);
      try {
        const query = { ...filtersToQuery(f), cursor: from.cursor ?? undefined };
        const page = await guard(api.listEvents(query));
        if (mine === generation.current) setHistory(appendPage(from, page));
      } catch (e) {
        if (mine !== generation.current) return;
        setError(e instanceof Error && e.message.startsWith('history.') ? t(e.message as MessageKey) : errorText(e, t));
        setHistory({ ...from, done: true });
      } finally {
        if (mine === generation.current) setLoading(false);
      }
    },
    [api, guard, t],
  );

  useEffect(() => {
    void load(emptyHistory, filters);
  }, [filters, load]);

  // New events from the stream go on top when they match (once the first page is there).
  useEffect(() => {
    if (loading) return;
    setHistory((h) => state.recent.reduce((acc, e) => prependLive(acc, e, filters), h));
  }, [state.recent, filters, loading]);

  const more = useCallback(() => {
    if (!loading && !history.done && history.cursor) void load(history, filters);
  }, [loading, history, filters, load]);

  useEffect(() => {
    const node = sentinel.current;
    if (!node || typeof IntersectionObserver === 'undefined') return;
    const observer = new IntersectionObserver((entries) => entries.some((e) => e.isIntersecting) && more(), { rootMargin: '200px' });
    observer.observe(node);
    return () => observer.disconnect();
  }, [more]);

  function apply(e: FormEvent) {
    e.preventDefault();
    setFilters({ ...draft });
  }

  const field = (name: 'device' | 'kind' | 'from' | 'to') => ({
    name,
    value: draft[name],
    onChange: (e: { target: { value: string } }) => setDraft({ ...draft, [name]: e.target.value }),
  });

  return (
    <>
      <h1 ref={headingRef} tabIndex={-1}>
        {t('history.title')}
      </h1>
      <form className="filters card" onSubmit={apply} aria-label={t('history.filters')}>
        <label>
          {t('history.device')}
          <select {...field('device')}>
            <option value="">{t('history.allDevices')}</option>
            {state.devices.map((d) => (
              <option key={d.id} value={d.id}>
                {d.id}
              </option>
            ))}
          </select>
        </label>
        <label>
          {t('history.kind')}
          <select {...field('kind')}>
            <option value="">{t('kind.all')}</option>
            {KNOWN_KINDS.map((k) => (
              <option key={k} value={k}>
                {i18n.kind(k)}
              </option>
            ))}
          </select>
        </label>
        <label>
          {t('history.from')}
          <input type="datetime-local" step="1" {...field('from')} />
        </label>
        <label>
          {t('history.to')}
          <input type="datetime-local" step="1" {...field('to')} />
        </label>
        <label className="check">
          <input
            type="checkbox"
            name="unacknowledged"
            checked={draft.unacknowledged}
            onChange={(e) => setDraft({ ...draft, unacknowledged: e.target.checked })}
          />
          {t('history.unacknowledgedOnly')}
        </label>
        <div className="actions">
          <button type="submit" className="primary">
            {t('history.apply')}
          </button>
          <button
            type="button"
            onClick={() => {
              setDraft(emptyFilters);
              setFilters(emptyFilters);
            }}
          >
            {t('history.reset')}
          </button>
        </div>
      </form>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <ul className="history" aria-busy={loading} data-testid="history-list">
        {history.items.map((item) => {
          const e = state.acks.get(item.id) ?? item;
          return (
            <li key={e.id}>
              <button type="button" className="row" onClick={() => onOpen(e)} data-event-id={e.id}>
                <span className="when">{i18n.time(e.corrected_at)}</span>
                <span className="what">
                  <strong>{i18n.kind(e.kind)}</strong> · {e.device} ({e.sensor})
                </span>
                <span className={`status ${e.acknowledged_at ? 'ok' : 'hot'}`}>
                  {e.acknowledged_at ? t('history.acknowledgedBy', { user: e.acknowledged_by ?? '?' }) : t('history.unacknowledged')}
                </span>
              </button>
            </li>
          );
        })}
      </ul>
      <div ref={sentinel} className="history-end" role="status">
        {loading
          ? t('history.loading')
          : history.done && !error
            ? history.items.length === 0
              ? t('history.empty')
              : t('history.end')
            : null}
      </div>
      {!history.done && !loading && history.cursor && (
        <button type="button" onClick={more}>
          {t('history.loadMore')}
        </button>
      )}
    </>
  );
}
