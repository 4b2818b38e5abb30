//! Reading every customer of a realm one page at a time, so a caller never holds more than a
//! few pages however large the realm is.
//!
//! Pages are asked for by offset (`STARTPOSITION`) in `ORDERBY Id` order, so a customer created
//! while the read goes on sorts after every existing one and shifts no page still to come: no
//! existing customer is skipped or read twice because of it. A record that moves the other way
//! (reactivated, or given a lower Id) would push the rest forward by one and show up again at
//! the start of the next page; those repeats are dropped against the previous page's Ids. A
//! record that leaves the result between two pages (made inactive while only active ones are
//! read) pulls the rest back by one, so one record may be missed; CDC catches such changes.

use std::collections::HashSet;

use futures::{StreamExt, future::BoxFuture, stream::FuturesOrdered};

use super::{QboClient, QboError, limiter::Lane, types::CustomerPage};
use crate::domain::TenantId;

/// The most pages a pager keeps in flight ahead of its reader.
const MAX_READ_AHEAD: usize = 10;

/// Pages through a realm's customers; made by [`QboClient::customer_pager`].
pub struct CustomerPager<'a> {
    client: &'a QboClient,
    tenant: TenantId,
    include_inactive: bool,
    lane: Lane,
    page_size: u32,
    read_ahead: usize,
    /// STARTPOSITION of the next page handed to the reader.
    next_start: u32,
    /// STARTPOSITION of the next page to ask QBO for (ahead of `next_start` when reading ahead).
    next_request: u32,
    in_flight: FuturesOrdered<BoxFuture<'a, Result<CustomerPage, QboError>>>,
    previous_ids: HashSet<String>,
    done: bool,
}

impl std::fmt::Debug for CustomerPager<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomerPager")
            .field("tenant", &self.tenant)
            .field("include_inactive", &self.include_inactive)
            .field("page_size", &self.page_size)
            .field("next_start", &self.next_start)
            .field("in_flight", &self.in_flight.len())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl QboClient {
    /// A pager over every customer of the tenant's realm (inactive ones too with
    /// `include_inactive`), in pages of the configured MAXRESULTS, one request at a time.
    #[must_use]
    pub fn customer_pager(
        &self,
        tenant: &TenantId,
        include_inactive: bool,
        lane: Lane,
    ) -> CustomerPager<'_> {
        CustomerPager {
            client: self,
            tenant: tenant.clone(),
            include_inactive,
            lane,
            page_size: self.settings.page_size,
            read_ahead: 1,
            next_start: 1,
            next_request: 1,
            in_flight: FuturesOrdered::new(),
            previous_ids: HashSet::new(),
            done: false,
        }
    }
}

impl CustomerPager<'_> {
    /// Sets MAXRESULTS (1 to 1000).
    #[must_use]
    pub fn page_size(mut self, size: u32) -> Self {
        self.page_size = size.clamp(1, 1000);
        self
    }

    /// Keeps up to `pages` requests in flight (1 to 10), so a reader on a fast link is bound
    /// by the limiter's pacing rather than by each page's round trip. Pages still come back in
    /// order; at the end, up to `pages − 1` requests past the last page are wasted.
    #[must_use]
    pub fn read_ahead(mut self, pages: usize) -> Self {
        self.read_ahead = pages.clamp(1, MAX_READ_AHEAD);
        self
    }

    /// Starts at STARTPOSITION `position` (1 is the first customer): a read that stopped goes
    /// on from the position [`Self::position`] gave. Call before the first page.
    #[must_use]
    pub fn start_at(mut self, position: u32) -> Self {
        let position = position.max(1);
        self.next_start = position;
        self.next_request = position;
        self
    }

    /// STARTPOSITION of the next page this pager hands out: where a read that stops now
    /// would go on from.
    #[must_use]
    pub fn position(&self) -> u32 {
        self.next_start
    }

    /// The next page, or `None` after the last one. After an error the same page is asked
    /// for again on the next call.
    ///
    /// # Errors
    /// The call errors of [`QboClient`].
    pub async fn next_page(&mut self) -> Result<Option<CustomerPage>, QboError> {
        if self.done {
            return Ok(None);
        }
        while self.in_flight.len() < self.read_ahead {
            self.request_next();
        }
        let Some(answer) = self.in_flight.next().await else {
            return Ok(None);
        };
        let mut page = match answer {
            Ok(page) => page,
            Err(e) => {
                // Drop the pages asked for after this one: a retry asks for them again, behind it.
                self.in_flight = FuturesOrdered::new();
                self.next_request = self.next_start;
                return Err(e);
            }
        };
        self.next_start += self.page_size;
        if !page.more {
            self.done = true;
            self.in_flight = FuturesOrdered::new();
        }
        let ids: HashSet<String> = page.customers.iter().map(|c| c.id.clone()).collect();
        page.customers
            .retain(|c| !self.previous_ids.contains(&c.id));
        self.previous_ids = ids;
        // A full last page is followed by an empty one: that is the end, not a page.
        if self.done && page.customers.is_empty() {
            return Ok(None);
        }
        Ok(Some(page))
    }

    fn request_next(&mut self) {
        let (client, tenant) = (self.client, self.tenant.clone());
        let (start, size) = (self.next_request, self.page_size);
        let (include_inactive, lane) = (self.include_inactive, self.lane);
        self.in_flight.push_back(Box::pin(async move {
            client
                .query_customers_page_sized(&tenant, start, size, include_inactive, lane)
                .await
        }));
        self.next_request += size;
    }
}
