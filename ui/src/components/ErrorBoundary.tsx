import { Component, type ErrorInfo, type ReactNode } from 'react';
import { InlineNotification, Button } from '@carbon/react';

interface Props {
  name: string;
  children: ReactNode;
}

interface State {
  error: Error | null;
}

/** One per page (and per heavy panel): a view that throws shows this, the rest of the app stays. */
export class ErrorBoundary extends Component<Props, State> {
  state: State = { error: null };

  static getDerivedStateFromError(error: Error): State {
    return { error };
  }

  componentDidCatch(error: Error, info: ErrorInfo): void {
    console.error(`view ${this.props.name} failed`, error, info.componentStack);
  }

  render(): ReactNode {
    if (this.state.error) {
      return (
        <div data-testid={`error-boundary-${this.props.name}`}>
          <InlineNotification
            kind="error"
            lowContrast
            hideCloseButton
            title={`The ${this.props.name} view failed`}
            subtitle={this.state.error.message}
          />
          <Button
            kind="tertiary"
            size="sm"
            data-testid={`error-retry-${this.props.name}`}
            onClick={() => this.setState({ error: null })}
          >
            Try again
          </Button>
        </div>
      );
    }
    return this.props.children;
  }
}
