package storage

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Tags returns the catalog's tags of one category, or of every category
// when category is nil, ordered by category then id.
func (s *Store) Tags(ctx context.Context, category *TagCategory) ([]*Tag, error) {
	filter := bson.D{}
	if category != nil {
		if err := checkEnum("category", *category, tagCategories); err != nil {
			return nil, err
		}
		filter = bson.D{{Key: "category", Value: *category}}
	}
	opts := options.Find().SetSort(bson.D{{Key: "category", Value: 1}, {Key: "tagId", Value: 1}}).SetBatchSize(1000)
	cur, err := s.tags.Find(ctx, filter, opts)
	if err != nil {
		return nil, fmt.Errorf("find tags: %w", err)
	}
	var tags []*Tag
	if err := cur.All(ctx, &tags); err != nil {
		return nil, fmt.Errorf("read tags: %w", err)
	}
	return tags, nil
}

// TagsByKey returns the tags with the given keys; unknown keys are absent.
func (s *Store) TagsByKey(ctx context.Context, keys []TagKey) (map[TagKey]*Tag, error) {
	ids := make(bson.A, len(keys))
	for i, k := range keys {
		ids[i] = k.docID()
	}
	return findByKey(ctx, s, s.tags, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}, len(keys),
		func(t *Tag) TagKey { return TagKey{t.Category, t.ID} })
}
