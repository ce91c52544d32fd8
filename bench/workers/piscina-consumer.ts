// Piscina task for the ring-transport suite: the string (or batch of strings) arrives already
// decoded by postMessage's structured clone; the handler is empty.
function handle(_message: string): void {}

export default function consume(task: string | string[]): number {
  if (typeof task === 'string') {
    handle(task)
    return 1
  }
  for (let i = 0; i < task.length; i++) handle(task[i])
  return task.length
}
