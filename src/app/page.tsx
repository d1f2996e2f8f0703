import { FleetSummary } from "./fleet-summary";

export default function HomePage() {
  return (
    <main>
      <h1>Synapse Engine</h1>
      <FleetSummary />
    </main>
  );
}
