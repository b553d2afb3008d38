import { type ResourceView, useATPWebSocket } from '@atp/ws-react';
import { type ReactElement, useEffect, useMemo, useState, useSyncExternalStore } from 'react';
import { fetchExecutions } from './api.js';
import { Header } from './components/header.js';
import { RecoveryNotice } from './components/recovery-notice.js';
import { SuiteDetailView } from './components/suite-detail.js';
import { SuiteList } from './components/suite-list.js';
import { DashboardStore } from './dashboard-store.js';
import { DetailFeeds, SuiteFeeds } from './feeds.js';
import {
  type Suite,
  type SuiteDetail,
  type SuiteExecutionRecord,
  type SuiteFeed,
  toSuite,
  toTestRun,
} from './types.js';
import { useGapRecovery } from './use-gap-recovery.js';
import { useViewState } from './use-view-state.js';

declare global {
  interface Window {
    /** What the page shows of the selected suite, for the end-to-end tests to compare with the server. */
    atpDashboard?: { readonly suiteId: number | undefined; readonly status: string; readonly data: unknown };
  }
}

const LOADING: ResourceView<SuiteExecutionRecord> = { data: undefined, status: 'loading', error: undefined };

/** The suite shown when the URL names none: the newest running one, else the newest. */
function defaultSuite(suites: readonly Suite[]): number | undefined {
  return (suites.find((s) => s.status === 'running') ?? suites[0])?.id;
}

/** The dashboard page; it expects an `ATPWebSocketProvider` above it. */
export function App(): ReactElement {
  const [store] = useState(() => new DashboardStore());
  const snapshot = useSyncExternalStore(store.subscribe, store.getSnapshot);
  const [view, setView] = useViewState();
  // Suites the server said it does not have: not chosen again by default.
  const [gone, setGone] = useState<ReadonlySet<number>>(() => new Set());
  const selectedId = view.suite ?? defaultSuite(snapshot.suites.filter((s) => !gone.has(s.id)));
  const selected = (snapshot.selected?.id === selectedId ? snapshot.selected?.view : undefined) ?? LOADING;
  const { notice, dismiss } = useGapRecovery(store);
  const { on } = useATPWebSocket();

  useEffect(() => {
    const controller = new AbortController();
    fetchExecutions(controller.signal).then(
      (list) => store.loadSuites(list),
      () => store.markSuitesLoaded(),
    );
    return () => controller.abort();
  }, [store]);

  // Pin the default choice in the URL, so that a reload shows the same run even once it finished.
  useEffect(() => {
    if (view.suite === undefined && selectedId !== undefined) setView({ suite: selectedId });
  }, [view.suite, selectedId, setView]);

  // The selected suite is not on this server (a restarted server started runs of its own): move on.
  const notFound = selected.error?.serverCode === 'resource_not_found';
  useEffect(() => {
    if (!notFound || selectedId === undefined) return;
    setGone((ids) => new Set(ids).add(selectedId));
    setView({ suite: undefined });
  }, [notFound, selectedId, setView]);

  useEffect(() => {
    if (selectedId === undefined) store.select(undefined);
  }, [store, selectedId]);

  useEffect(() => on('message', () => store.countArrival()), [on, store]);
  useEffect(() => {
    const timer = setInterval(() => store.refreshRate(), 2000);
    return () => clearInterval(timer);
  }, [store]);

  const record = selected.data?.id === selectedId ? selected.data : undefined;
  const feed = snapshot.feed?.suiteId === selectedId ? snapshot.feed : undefined;
  const detail = useMemo(() => record && feed && toDetail(record, feed), [record, feed]);
  const suite = useMemo(() => record && toSuite(record), [record]);
  useEffect(() => {
    window.atpDashboard = { suiteId: selectedId, status: selected.status, data: selected.data };
    document.title = suite
      ? `${suite.name ?? 'Suite'} · ${Math.round(suite.progressPercent)}% · ATP`
      : 'ATP Dashboard';
  }, [selectedId, selected, suite]);

  return (
    <div className="app">
      <SuiteFeeds store={store} />
      {selectedId !== undefined && <DetailFeeds key={selectedId} store={store} suiteId={selectedId} />}
      <Header suites={snapshot.suites} rate={snapshot.rate} />
      {notice && <RecoveryNotice key={notice.id} notice={notice} onDismiss={dismiss} />}
      <div className="layout">
        <SuiteList
          suites={snapshot.suites}
          loaded={snapshot.suitesLoaded}
          selectedId={selectedId}
          onSelect={(id) => setView({ suite: id })}
        />
        <main className="main">
          {suite && detail ? (
            <SuiteDetailView
              suite={suite}
              detail={detail}
              status={selected.status}
              eventTypes={view.events}
              logLevels={view.levels}
              onEventTypesChange={(events) => setView({ events })}
              onLogLevelsChange={(levels) => setView({ levels })}
            />
          ) : selectedId !== undefined ? (
            <div className="placeholder">
              {notFound ? (
                <h2>Run #{selectedId} is not on this server</h2>
              ) : (
                <p className="muted">
                  {selected.error
                    ? `Run #${selectedId}: ${selected.error.message}`
                    : `Loading run #${selectedId}…`}
                </p>
              )}
            </div>
          ) : (
            <div className="placeholder">
              <h2>{snapshot.suitesLoaded ? 'Waiting for the first run' : 'Loading…'}</h2>
              <p className="muted">
                Runs stream in live over WebSocket. Start the simulated runner (on by default, off with{' '}
                <code>ATP_DEMO=0</code>) or publish to <code>POST /api/ws/publish</code>.
              </p>
            </div>
          )}
        </main>
      </div>
      <footer className="footer">
        <span>ATP real-time updates</span>
        <a href="/plain.html">Plain page</a>
        <a href="/api/executions">/api/executions</a>
        <a href="/api/ws/info">/api/ws/info</a>
      </footer>
    </div>
  );
}

/** The detail of the selected suite: its record (a live resource) with its event and log feeds. */
function toDetail(record: SuiteExecutionRecord, feed: SuiteFeed): SuiteDetail {
  return {
    suiteId: record.id,
    tests: record.tests.map(toTestRun).sort((a, b) => b.id - a.id),
    events: feed.events,
    logs: feed.logs,
    eventCounts: record.event_types,
    logCounts: record.logs,
  };
}
